"""Are the default Gaussian models' held-out log-likelihoods trustworthy in cross-validation?

The protocol of issue 13: ``cross_val_score(estimator, X, cv=3)`` on
``StandardScaler().fit_transform(load_digits().data)`` (all 64 columns, scikit-learn's default
unshuffled folds, so the middle fold's writers are new to the model), for
``AutoencoderTransformer(n_components=k)`` and ``VAETransformer(n_components=k)`` at their defaults
(no random_state, as a user would run them) and ``PCA(k)``, k = 4, 8, 16. Target: every fold
finite, each model's mean at least PCA's, and no fold more than 10 nats below PCA's same fold.

    python benchmarks/bench_likelihood_cv.py          # results/likelihood_cv_cpu.json
"""

import argparse
import sys
import time
import warnings

import numpy as np

import _common as C

SUITE = "quality"


def run(args):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_score
    from sklearn.preprocessing import StandardScaler

    ours = C.ours()
    C.set_threads(args.threads)
    ctx = C.context("cpu")
    X = StandardScaler().fit_transform(load_digits().data)
    records, rows = [], []
    for k in args.k:
        pca = cross_val_score(PCA(k), X, cv=3)
        for name in ("AutoencoderTransformer", "VAETransformer"):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                folds = cross_val_score(ours[name](n_components=k, device="cpu"), X, cv=3)
            seconds = time.perf_counter() - start
            gaps = folds - pca
            ok = bool(np.all(np.isfinite(folds)) and folds.mean() >= pca.mean() and gaps.min() >= -10)
            records.append(C.record(ctx, SUITE, f"digits standardized, cv=3 unshuffled, k={k}", name,
                                    "cv_mean_log_likelihood", float(folds.mean()), folds=folds.tolist(),
                                    pca_folds=pca.tolist(), worst_gap=float(gaps.min()), target_met=ok,
                                    seconds=seconds, warnings=sorted({type(w.message).__name__ for w in caught})))
            rows.append([k, name, " / ".join(f"{v:.2f}" for v in folds), " / ".join(f"{v:.2f}" for v in pca),
                         f"{folds.mean():.2f}", f"{pca.mean():.2f}", f"{gaps.min():.2f}", "yes" if ok else "NO"])
            print(f"k={k} {name}: folds {np.round(folds, 2)} PCA {np.round(pca, 2)} worst gap "
                  f"{gaps.min():.2f} -> {'met' if ok else 'NOT met'}", flush=True)
    text = C.header_lines(ctx, "Held-out log-likelihoods in cross-validation (issue 13 protocol)",
                          " ".join(["python benchmarks/bench_likelihood_cv.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += C.md_table(["k", "model", "folds (nats per image)", "PCA folds", "mean", "PCA mean",
                        "worst fold gap", "target met"], rows)
    path = C.write_results(records, "likelihood_cv_cpu", text)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--threads", type=int, default=None)
    run(parser.parse_args())
