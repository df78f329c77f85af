"""Is BernoulliRBMStack's training slower than at an earlier commit? Both in one process.

Timings of separate runs on a shared 2-core machine drift by more than the differences looked
for, so this script loads the package of an earlier commit under another name
(``git archive`` of ``--before`` into a temporary folder) beside the working tree's, and fits
the same RBM with each in turn, ``--repeats`` times, one torch thread; the minimum of each is
compared. The configurations: ``BernoulliRBM``'s batch of 10 on the digits' shape (64-256) and a
batch of 128 on 10,000 x 64 (64-32), CD-1 with persistent chains, 5 epochs.

    python benchmarks/ab_rbm_speed.py --before 29e6398    # results/rbm_speed_ab_cpu.json
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import _common as C

ROOT = Path(__file__).resolve().parents[1]


def load_old(commit, folder):
    """The package as it was at ``commit``, importable as ``sklearn_ae_before``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "sklearn_ae"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    shutil.move(str(Path(folder) / "sklearn_ae"), str(Path(folder) / "sklearn_ae_before"))
    sys.path.insert(0, str(folder))
    import sklearn_ae_before

    return sklearn_ae_before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="29e6398")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ctx = C.context("cpu")
    import sklearn_ae

    rng = np.random.RandomState(0)
    configs = {
        "digits shape 1797x64, 64-256, batch 10": ((rng.rand(1797, 64) > 0.5).astype(np.float32),
                                                   dict(n_components=256, batch_size=10)),
        "10000x64, 64-32, batch 128": ((rng.rand(10000, 64) > 0.5).astype(np.float32),
                                       dict(n_components=32, batch_size=128)),
    }
    common = dict(max_iter=5, learning_rate=0.1, persistent=True, random_state=0, device="cpu")
    records, rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        before = load_old(args.before, folder)
        for case, (X, params) in configs.items():
            seconds = {"before": [], "after": []}
            for _ in range(args.repeats):
                for label, module in (("before", before), ("after", sklearn_ae)):
                    model = module.BernoulliRBMStack(**params, **common)
                    start = time.perf_counter()
                    model.fit(X)
                    seconds[label].append(time.perf_counter() - start)
            ratio = min(seconds["after"]) / min(seconds["before"])
            records.append(C.record(ctx, "speed", case, "BernoulliRBMStack", "fit_time_after_over_before", ratio,
                                    before_commit=args.before, seconds_before=seconds["before"],
                                    seconds_after=seconds["after"], params={**params, **common}))
            rows.append([case, C.fmt(min(seconds["before"])), C.fmt(min(seconds["after"])), f"{ratio:.3f}"])
            print(f"{case}: before {min(seconds['before']):.3f}s after {min(seconds['after']):.3f}s "
                  f"-> after/before {ratio:.3f}", flush=True)
    text = C.header_lines(ctx, f"BernoulliRBMStack fit time against commit {args.before}, in one process",
                          " ".join(["python benchmarks/ab_rbm_speed.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += C.md_table(["case", f"fit s at {args.before} (min)", "fit s now (min)", "now / before"], rows)
    path = C.write_results(records, "rbm_speed_ab_cpu", text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
