"""Does the default VAE get enough optimizer steps on small data sets?

``VAETransformer(batch_size="auto")`` uses ``min(200, n_samples)`` rows a batch, as
``MLPRegressor`` does. On a few hundred rows that is one or two optimizer steps an epoch, and the
ELBO, a noisy estimate, shows no progress for ``n_iter_no_change`` epochs long before the model
has fitted (or ``max_iter`` runs out first). This study fits the VAE at its defaults and with
candidate batch rules on every set where a rule changes anything (fewer than 2,000 training
rows), and scores the held-out rows (mean log-likelihood in nats, importance-sampled) against
PCA's at the same code size on the same split:

* ``auto``: today's ``min(200, n)``;
* ``min(200, max(32, n // 10))``: at least ten batches an epoch down to 320 rows, never
  fewer than 32 rows a batch;
* ``32``: a small fixed batch;
* the second rule with ``n_iter_no_change=20``.

Sets: standardized digits (3 folds), breast cancer, wine, iris and diabetes (3 shuffled folds),
and the ODDS sets under 2,000 training rows (3 random 60/40 splits, standardized on the training
part). Code size ``k = min(8, n_features // 2)``.

    PYTHONPATH=.:benchmarks python benchmarks/study_vae_batch.py [--datasets NAME ...] [--out NAME]
    PYTHONPATH=.:benchmarks python benchmarks/study_vae_batch.py --merge OUT PART1 PART2 ...
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold, train_test_split
from sklearn.preprocessing import StandardScaler

import _common as C

SUITE = "vae_batch_study"
ODDS = ["arrhythmia", "ionosphere", "vowels", "cardio", "letter", "musk"]
RULES = {
    "auto": {},
    "min(200, max(32, n // 10))": "rule",
    "32": {"batch_size": 32},
    "min(200, max(32, n // 10)), n_iter_no_change=20": "rule20",
}


def datasets(names=None):
    from scipy.io import loadmat
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

    def folds(X):
        return [(X[tr], X[te]) for tr, te in KFold(3, shuffle=True, random_state=0).split(X)]

    def standardized(splits):
        out = []
        for train, test in splits:
            scaler = StandardScaler().fit(train)
            out.append((scaler.transform(train).astype(np.float32), scaler.transform(test).astype(np.float32)))
        return out

    sets = {"digits": lambda: standardized([(X[tr], X[te]) for X in [load_digits().data]
                                            for tr, te in KFold(3).split(X)])}
    for name, loader in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("iris", load_iris),
                         ("diabetes", load_diabetes)):
        sets[name] = lambda loader=loader: standardized(folds(loader().data))
    for name in ODDS:
        def odds(name=name):
            X = loadmat(C.require_data("odds", f"{name}.mat"))["X"].astype(np.float64)
            return standardized([train_test_split(X, test_size=0.4, random_state=seed) for seed in range(3)])
        sets[f"ODDS {name}"] = odds
    for name, load in sets.items():
        if names is None or name in names or name.replace("ODDS ", "") in names:
            yield name, load()


def params(rule, n):
    if rule == "rule":
        return {"batch_size": min(200, max(32, n // 10))}
    if rule == "rule20":
        return {"batch_size": min(200, max(32, n // 10)), "n_iter_no_change": 20}
    return dict(rule)


def run(args):
    from sklearn_ae import VAETransformer

    C.set_threads(1)
    ctx = C.context("cpu")
    records = []
    for name, splits in datasets(args.datasets):
        for split, (X_train, X_test) in enumerate(splits):
            k = min(8, X_train.shape[1] // 2)
            pca = float(PCA(k).fit(X_train).score(X_test))
            for label, rule in RULES.items():
                kw = params(rule, len(X_train))
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    vae = VAETransformer(n_components=k, random_state=split, device="cpu", **kw).fit(X_train)
                seconds = time.perf_counter() - start
                score = float(vae.score(X_test))
                records.append(C.record(ctx, SUITE, f"{name}, k={k}", label, "heldout_minus_pca_nats", score - pca,
                                        split=split, heldout=score, pca=pca, fit_seconds=seconds,
                                        epochs=vae.n_iter_, n_train=len(X_train), params=kw))
                print(f"{name:<18} split {split} {label:<48} gap {score - pca:+8.3f}  {vae.n_iter_:4d} epochs "
                      f"{seconds:6.1f}s", flush=True)
    C.write_results(records, args.out, markdown(records, ctx, " ".join(sys.argv)))


def markdown(records, ctx, command):
    cases = list(dict.fromkeys(r["case"] for r in records))
    labels = list(RULES)
    rows, means = [], {label: [] for label in labels}
    for case in cases:
        row = [case, next(r["n_train"] for r in records if r["case"] == case)]
        for label in labels:
            rs = [r for r in records if r["case"] == case and r["implementation"] == label]
            gaps = [r["value"] for r in rs]
            means[label].append(np.mean(gaps))
            row.append(f"{np.mean(gaps):+.2f} (worst {min(gaps):+.2f}; {np.mean([r['fit_seconds'] for r in rs]):.1f}s)")
        rows.append(row)
    rows.append(["mean over sets", ""] + [f"{np.mean(means[label]):+.2f}" for label in labels])
    rows.append(["sets at or above PCA (mean)", ""] + [f"{sum(m >= 0 for m in means[label])} of {len(cases)}"
                                                      for label in labels])
    text = C.header_lines(ctx, "VAETransformer on small data: batch size against held-out log-likelihood", command)
    text += __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0] + "\n\n"
    text += ("Each cell: the held-out log-likelihood minus PCA's, mean over the splits (worst split; mean fit "
             "seconds, one thread).\n\n")
    text += C.md_table(["set, code size", "training rows", *labels], rows)
    return text


def merge(args):
    records = []
    for name in args.merge[1:]:
        records += json.loads((C.RESULTS / f"{name}.json").read_text())
    ctx = {k: records[0][k] for k in ("device", "machine", "versions", "torch_threads", "load_average_1min",
                                      "timestamp")}
    C.write_results(records, args.merge[0], markdown(records, ctx, " ".join(sys.argv)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--out", default="vae_batch_study")
    parser.add_argument("--merge", nargs="+", default=None, help="OUT PART [PART ...]")
    args = parser.parse_args(argv)
    merge(args) if args.merge else run(args)


if __name__ == "__main__":
    main()
