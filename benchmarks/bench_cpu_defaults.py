"""Is AutoencoderTransformer's fit on digits at least as fast as MLPRegressor(X -> X) on a
2-core CPU, each library at its own default thread settings?

``bench_speed.py --threads 1`` pins both libraries to one thread (fair per core, and robust on a
loaded machine). A user keeps the defaults: scikit-learn's BLAS uses every core, while our engine
trains small models with one intra-op thread (faster for them). This script measures that,
for float32 and float64 input (MLPRegressor computes in the input's precision; we train in float32),
median of interleaved repeats, same architecture (64-128-64-8 tanh and mirror), batch 200, 50 epochs,
no early stop. Usage: ``python benchmarks/bench_cpu_defaults.py [--repeats 5]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    from bench_speed import digits_autoencoder_fits

    ctx = C.context("cpu")
    X0 = load_digits().data / 16.0
    epochs = args.epochs
    fits = digits_autoencoder_fits(epochs, 0)
    ours, mlp = fits["AutoencoderTransformer"], fits["sklearn MLPRegressor"]

    records, rows = [], []
    for dtype in (np.float32, np.float64):
        X = X0.astype(dtype)
        ours(X), mlp(X)  # warm-up
        times = {"AutoencoderTransformer": [], "sklearn MLPRegressor": []}
        for _ in range(args.repeats):
            for name, fn in (("AutoencoderTransformer", ours), ("sklearn MLPRegressor", mlp)):
                start = time.perf_counter()
                fn(X)
                times[name].append(time.perf_counter() - start)
        case = f"digits 1797x64 64-128-64-8 tanh bs200 {epochs} epochs {np.dtype(dtype).name} default threads"
        med = {k: C.median(v) for k, v in times.items()}
        for name, t in med.items():
            records.append(C.record(ctx, "speed", case, name, "train_samples_per_s",
                                    X.shape[0] * epochs / t, fit_seconds=t,
                                    rows_timed=X.shape[0], epochs=epochs))
        ratio = med["sklearn MLPRegressor"] / med["AutoencoderTransformer"]
        rows.append([case, C.fmt(med["AutoencoderTransformer"]), C.fmt(med["sklearn MLPRegressor"]),
                     C.fmt(ratio)])
    command = "python benchmarks/bench_cpu_defaults.py " + " ".join(sys.argv[1:])
    md = C.header_lines(ctx, "CPU fit time at default thread settings: ours vs MLPRegressor",
                        command.strip())
    md += C.md_table(["case", "ours (s)", "MLPRegressor (s)", "MLPRegressor time / ours (>= 1: we are no slower)"], rows)
    path = C.write_results(records, "speed_cpu_defaults", md)
    print(md)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
