"""Did a change make training slower? Two sets of ``bench_speed.py`` runs, side by side.

Each set is several runs of the same command, the two sets taking turns on the machine (before,
after, before, after, ...), so that both see the same load. Per case and implementation: the median
training throughput of each set, their ratio, and the ratio normalised by the scikit-learn anchor
of the same case (``MLPRegressor`` for the autoencoders, ``BernoulliRBM`` for the RBM) measured in
the same runs, which cancels most of the drift of a shared machine.

    python benchmarks/compare_speed.py --before 'results/speed_issue15_before_*.json' \\
        --after 'results/speed_issue15_after_*.json' --out speed_issue15_cpu
"""

import argparse
import collections
import glob
import json
import sys

import numpy as np

import _common as C

ANCHORS = {"BernoulliRBMStack": "sklearn BernoulliRBM"}
OURS = ("AutoencoderTransformer", "SparseAutoencoder", "VAETransformer", "BernoulliRBMStack")


def load(pattern):
    values, meta = collections.defaultdict(list), {}
    for path in sorted(glob.glob(pattern)):
        data = json.load(open(path))
        for r in data["records"] if isinstance(data, dict) else data:
            if r["metric"] == "train_samples_per_s":
                values[(r["case"], r["implementation"])].append(r["value"])
                meta.setdefault("load", []).append(r.get("load_average_1min"))
    return values, meta


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--out", default="speed_compare_cpu")
    args = parser.parse_args()
    before, _ = load(args.before)
    after, _ = load(args.after)
    ctx = C.context("cpu")
    records, rows = [], []
    for case, impl in sorted(set(before) & set(after)):
        if impl not in OURS:
            continue
        anchor = ANCHORS.get(impl, "sklearn MLPRegressor")
        b, a = np.median(before[(case, impl)]), np.median(after[(case, impl)])
        ratio = a / b
        normalised = None
        if (case, anchor) in before and (case, anchor) in after:
            normalised = ratio / (np.median(after[(case, anchor)]) / np.median(before[(case, anchor)]))
        records.append(C.record(ctx, "speed", case, impl, "train_throughput_after_over_before", float(ratio),
                                normalised_by_anchor=None if normalised is None else float(normalised),
                                anchor=anchor, before=before[(case, impl)], after=after[(case, impl)]))
        rows.append([case, impl, C.fmt(b), C.fmt(a), f"{ratio:.2f}",
                     "" if normalised is None else f"{normalised:.2f}", anchor])
    text = C.header_lines(ctx, "Training throughput before and after a change",
                          " ".join(["python benchmarks/compare_speed.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += C.md_table(["case", "implementation", "before (samples/s, median)", "after", "after / before",
                        "normalised by the anchor", "anchor"], rows)
    path = C.write_results(records, args.out, text)
    print(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
