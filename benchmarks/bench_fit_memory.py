"""How much memory does ``fit`` need beyond its input?

Each estimator fits a 1,000,000 x 50 float32 array (200 MB; values in [0, 1], so every model
accepts it) for one epoch, with and without ``early_stopping``, each case in a fresh process that
loads the array first; the peak of the process's anonymous resident memory above the level at
the start of ``fit`` is the figure, after a warm-up fit on 2,000 rows has initialised the
libraries (the model itself is a few kilobytes). The target: at most
1.25 times the input. The sparse case: ``BernoulliRBMStack`` on a 30,000 x 4,500 CSR matrix
(0.07 % non-zero, 0.9 MB) whose dense form would take 540 MB, in batches of 100 rows.

    python benchmarks/bench_fit_memory.py                      # writes results/fit_memory_cpu.json
    python benchmarks/bench_fit_memory.py --rows 200000 --name fit_memory_cpu_small
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_fit_memory.py --label before

``--label`` names the code measured (e.g. the commit before a change), so that two runs can sit
side by side in one results file (``--append``).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

import _common as C

SUITE = "memory"
CASES = [
    ("AutoencoderTransformer", {}),
    ("AutoencoderTransformer", {"early_stopping": True}),
    ("SparseAutoencoder", {}),
    ("VAETransformer", {}),
    ("VAETransformer", {"early_stopping": True}),
    ("BernoulliRBMStack", {}),
]
SMALL = {"AutoencoderTransformer": dict(n_components=8, hidden_layer_sizes=(32,)),
         "SparseAutoencoder": dict(n_components=16),
         "VAETransformer": dict(n_components=8, hidden_layer_sizes=(32,), n_importance_samples=10),
         "BernoulliRBMStack": dict(n_components=32)}


def child(args):
    """In a fresh process: load the input, then measure one fit."""
    import scipy.sparse as sp

    name, params = json.loads(args.child)
    cls = C.ours()[name]
    if args.sparse:
        X = sp.load_npz(args.data)
    else:
        X = np.load(args.data)
    # batches of 1,024 rows (of 50 features); 100 rows of the 4,500-feature sparse matrix, whose
    # dense batches and their CD intermediates would otherwise outweigh the input many times
    batch_size = 100 if args.sparse else 1024
    est = cls(**SMALL[name], **params, max_iter=1, batch_size=batch_size, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls(**SMALL[name], **params, max_iter=1, random_state=0, device="cpu").fit(X[:2000])  # warm-up:
        # the first fit of a process initialises torch's and skorch's machinery, not per input
        with C.PeakMemory("cpu", interval=0.001) as mem:
            seconds, _ = C.timed(lambda: est.fit(X), "cpu")
    input_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if args.sparse else X.nbytes) / 2**20
    print(json.dumps({"peak_rss_mb": mem.peak_rss / 2**20, "peak_traced_mb": mem.peak_traced / 2**20,
                      "input_mb": input_mb, "seconds": seconds, "shape": list(X.shape)}))


def run(args):
    ctx = C.context("cpu")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        dense = Path(tmp) / "X.npy"
        rng = np.random.RandomState(0)
        np.save(dense, rng.rand(args.rows, 50).astype(np.float32))
        sparse = Path(tmp) / "X.npz"
        import scipy.sparse as sp

        S = sp.random(30000, 4500, density=0.0007, format="csr", random_state=0, dtype=np.float32)
        S.data[:] = 1.0
        sp.save_npz(sparse, S)
        cases = [(name, params, dense, False) for name, params in CASES]
        cases.append(("BernoulliRBMStack", {}, sparse, True))
        for name, params, path, is_sparse in cases:
            cmd = [sys.executable, __file__, "--child", json.dumps([name, params]), "--data", str(path)]
            cmd += ["--sparse"] if is_sparse else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            m = json.loads(out.strip().splitlines()[-1])
            case = (f"{'x'.join(map(str, m['shape']))} {'CSR' if is_sparse else 'float32'}"
                    + "".join(f", {k}={v}" for k, v in params.items()))
            extra = {k: m[k] for k in ("input_mb", "peak_traced_mb", "seconds")}
            extra.update(code=args.label, ratio_to_input=m["peak_rss_mb"] / m["input_mb"], params=params)
            records.append(C.record(ctx, SUITE, case, name, "peak_fit_rss_mb", m["peak_rss_mb"], **extra))
            print(f"  [{args.label}] {name:<24} {case:<40} peak +{m['peak_rss_mb']:8.1f} MB "
                  f"({m['peak_rss_mb'] / m['input_mb']:.2f}x the input), {m['seconds']:.1f}s", flush=True)
    path = C.RESULTS / f"{args.name}.json"
    if args.append and path.exists():
        records = [r for r in json.loads(path.read_text()) if r.get("code") != args.label] + records
    rows = [[r["case"], r["implementation"], r.get("code"), C.fmt(r["input_mb"]), C.fmt(r["value"]),
             f"{r['ratio_to_input']:.2f}", f"{r['seconds']:.1f}"] for r in records]
    text = C.header_lines(ctx, "Peak memory of fit beyond its input", " ".join(sys.argv))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += C.md_table(["case", "implementation", "code", "input MB", "peak extra RSS MB", "x input",
                        "fit s"], rows)
    C.write_results(records, args.name, text)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--name", default="fit_memory_cpu")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--append", action="store_true", help="keep other labels' records in the file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sparse", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    return run(args)


if __name__ == "__main__":
    main()
