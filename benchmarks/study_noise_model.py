"""Which observation-noise estimator keeps Gaussian held-out log-likelihoods meaningful?

The deterministic autoencoders score log N(x; x_hat, diag(noise_variance_)), the noise variance
fitted on training residuals. A feature that is constant (or rare-valued) in the training part
of a split and not in the test part gets a tiny fitted variance, and one held-out value then
costs thousands of nats. This study trains one ``AutoencoderTransformer`` per data set, split and
code size, takes its training and held-out residuals, and scores the held-out rows under each
candidate estimator of the per-feature variances:

- ``mle``: the mean squared training residual per feature, floored at 1e-6 times the mean
  feature variance (the estimator before this study);
- ``isotropic``: one variance for all features, the mean of the per-feature ones (as PPCA);
- ``shrink(l)``: (1 - l) * per-feature + l * shared, for fixed l;
- ``loo``: the same shrinkage with l chosen by the leave-one-out likelihood of the training
  residuals (each row's residuals scored under the variances of the other rows);
- ``floor(c)``: per-feature, floored at c times the shared level;
- ``...+const``: the same, with the shared level for features constant in the training data
  (they carry no evidence of their own noise);

next to ``PCA(k)`` and ``FactorAnalysis(k)`` on the same splits. Data: scikit-learn's digits
(the protocol of the issue: all 64 columns standardized on the whole set, three unshuffled
folds), breast cancer and wine (standardized, three shuffled folds), and ODDS sets
(standardized on the training part of each of three shuffled 60/40 splits). With several
``--alpha`` values it also compares the autoencoder's weight decay: in-sample residuals understate
the noise of an overfitted network, and no estimator fitted on them can see that.

    python benchmarks/study_noise_model.py                  # results/noise_model_study.json
    python benchmarks/study_noise_model.py --quick
    python benchmarks/study_noise_model.py --quick --k 8 --alpha 1e-4 1e-3 1e-2 1e-1 \\
        --estimators isotropic mle+const --out noise_weight_decay_study
"""

import argparse
import sys
import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.model_selection import KFold, train_test_split
from sklearn.preprocessing import StandardScaler

import _common as C

SUITE = "study"
GRID = np.concatenate([[0.0], np.logspace(-4, 0, 17)])


def gaussian_ll(residual_sq, variance):
    """Per-row log N(r; 0, diag(variance)) from squared residuals."""
    return -0.5 * (np.log(2 * np.pi * variance) + residual_sq / variance).sum(1)


def loo_lambda(r2, grid=GRID):
    """The shrinkage weight that maximises the leave-one-out likelihood of the residuals."""
    n = len(r2)
    s2 = r2.mean(0)
    shared = s2.mean()
    best, best_ll = 0.0, -np.inf
    for lam in grid:
        loo = (n * s2[None, :] - r2) / (n - 1)  # each row's variances without itself
        var = np.maximum((1 - lam) * loo + lam * shared, 1e-12 * shared)
        ll = gaussian_ll(r2, var).sum()
        if ll > best_ll:
            best, best_ll = lam, ll
    return best


def estimators(r2_train, X_train):
    s2 = r2_train.mean(0)
    shared = s2.mean()
    feature_var = X_train.var(0).mean()
    out = {"mle": np.maximum(s2, max(1e-6 * feature_var, 1e-12)), "isotropic": np.full_like(s2, shared)}
    for lam in (0.01, 0.1, 0.3):
        out[f"shrink({lam})"] = (1 - lam) * s2 + lam * shared
    lam = loo_lambda(r2_train)
    out["loo"] = np.maximum((1 - lam) * s2 + lam * shared, 1e-12 * shared)
    for c in (0.1, 0.3):
        out[f"floor({c})"] = np.maximum(s2, c * shared)
    # features constant in the training data carry no evidence of their noise: the shared level
    constant = X_train.var(0) <= 1e-8 * max(X_train.var(0).mean(), 1e-300)
    for name in ("mle", "loo", "shrink(0.1)"):
        out[f"{name}+const"] = np.where(constant, shared, out[name])
    return out, lam


def datasets(quick, odds=None):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    if odds is not None:  # only the ODDS sets named
        yield from _odds(odds)
        return
    X = StandardScaler().fit_transform(load_digits().data)
    yield "digits (issue protocol)", [(X[tr], X[te]) for tr, te in KFold(3).split(X)]
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine)):
        X = StandardScaler().fit_transform(loader().data)
        yield name, [(X[tr], X[te]) for tr, te in KFold(3, shuffle=True, random_state=0).split(X)]
    names = ["cardio", "satellite", "optdigits", "musk"] if quick else [
        "cardio", "satellite", "optdigits", "musk", "letter", "mnist", "arrhythmia", "ionosphere",
        "pendigits", "annthyroid", "mammography", "vowels"]
    yield from _odds(names)


def _odds(names):
    from scipy.io import loadmat

    for name in names:
        X = loadmat(C.require_data("odds", f"{name}.mat"))["X"].astype(np.float64)
        splits = []
        for seed in range(3):
            tr, te = train_test_split(X, test_size=0.4, random_state=seed)
            scaler = StandardScaler().fit(tr)
            splits.append((scaler.transform(tr), scaler.transform(te)))
        yield f"ODDS {name}", splits


def run(args):
    from sklearn_ae import AutoencoderTransformer

    torch.set_num_threads(1)
    ctx = C.context("cpu")
    records = []
    for name, splits in datasets(args.quick, args.odds):
        for k in args.k:
            for split, (X_train, X_test) in enumerate(splits):
                if k >= X_train.shape[1]:
                    continue
                scores = {}
                for alpha in args.alpha:
                    ae = AutoencoderTransformer(n_components=k, alpha=alpha, random_state=split, device="cpu")
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ae.fit(X_train)
                    r2_train = (X_train - ae.inverse_transform(ae.transform(X_train))) ** 2
                    r2_test = (X_test - ae.inverse_transform(ae.transform(X_test))) ** 2
                    variants, lam = estimators(r2_train, X_train)
                    label = "AE" if len(args.alpha) == 1 else f"AE alpha={alpha:g}"
                    scores.update({f"{label} {v}": float(gaussian_ll(r2_test, var).mean())
                                   for v, var in variants.items()
                                   if not args.estimators or v in args.estimators})
                scores[f"PCA({k})"] = float(PCA(k).fit(X_train).score(X_test))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores[f"FactorAnalysis({k})"] = float(FactorAnalysis(k, random_state=0).fit(X_train)
                                                          .score(X_test))
                for method, value in scores.items():
                    records.append(C.record(ctx, SUITE, f"{name}, k={k}", method.replace(f"({k})", "(k)"),
                                            "heldout_log_likelihood", value, split=split, k=k,
                                            loo_lambda=lam, n_train=len(X_train),
                                            n_features=X_train.shape[1]))
                best = max(scores, key=scores.get)
                print(f"  {name:<24} k={k:<3} split {split}: PCA {scores[f'PCA({k})']:10.2f}  "
                      f"best {best} {scores[best]:10.2f}", flush=True)
    write(records, ctx, args.out)


def write(records, ctx, out):
    methods = list(dict.fromkeys(r["implementation"] for r in records))
    cases = list(dict.fromkeys(r["case"] for r in records))
    rows = []
    gaps = {m: [] for m in methods}
    for case in cases:
        by = {m: [r for r in records if r["case"] == case and r["implementation"] == m] for m in methods}
        pca = {r["split"]: r["value"] for r in by["PCA(k)"]}
        row = [case]
        for m in methods:
            values = [r["value"] for r in by[m]]
            row.append(C.fmt(float(np.mean(values)), 5) if values else "")
            gaps[m] += [r["value"] - pca[r["split"]] for r in by[m]]
        rows.append(row)
    summary = [[m, f"{np.median(gaps[m]):.2f}", f"{np.min(gaps[m]):.1f}",
                f"{np.mean(np.array(gaps[m]) >= -10):.2f}"] for m in methods]
    text = C.header_lines(ctx, "Study: observation-noise estimators, held-out log-likelihood",
                          " ".join(["python benchmarks/study_noise_model.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += "## Against PCA on the same split (nats per row)\n\n"
    text += C.md_table(["method", "median gap to PCA", "worst gap", "share of splits >= PCA - 10"], summary)
    text += "\n## Mean held-out log-likelihood per case (nats per row)\n\n"
    text += C.md_table(["case", *methods], rows)
    path = C.write_results(records, out, text)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--alpha", type=float, nargs="+", default=[1e-4],
                        help="weight decay of the autoencoder; several compare them")
    parser.add_argument("--estimators", nargs="+", default=None,
                        help="only these noise estimators (e.g. isotropic mle+const)")
    parser.add_argument("--odds", nargs="+", default=None, help="only these ODDS sets")
    parser.add_argument("--out", default="noise_model_study", help="results file name")
    run(parser.parse_args())
