"""How well do our estimators' ``score_samples`` rank outliers, next to PyOD's detectors?

The 21 ODDS sets in ``../shared/data/odds`` under PyOD's own benchmark protocol: one 60/40
train/test split (``train_test_split(..., test_size=0.4, random_state=0)``), features
standardized with the training part's mean and standard deviation, each detector fitted on the
training part at its default settings, ROC-AUC of its outlier scores on the test part.

Our estimators score with ``-score_samples`` (a low log-likelihood means outlying).
``BernoulliRBMStack`` needs inputs in [0, 1], so it runs behind ``MinMaxScaler(clip=True)``
fitted on the same standardized training part. Anchors, in the same process on the same split:
PyOD's ``AutoEncoder`` (and, outside ``--quick``, its ``VAE``), scikit-learn's
``IsolationForest`` and PyOD's ``PCA`` (its benchmark's detectors), and scikit-learn's
``PCA.score_samples`` (the linear Gaussian log-likelihood). PyOD's published 2024 ROC-AUC for
the same protocol (``../shared/data/reference/pyod_notebooks_2024_roc.csv``) goes beside each
anchor as ``reference`` where the set is in that table (17 of the 21).
"""

import argparse
import csv
import sys
import time
import warnings

import numpy as np
import scipy.io
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import _common as C

SUITE = "outliers"

ODDS = ["annthyroid", "arrhythmia", "breastw", "cardio", "glass", "ionosphere", "letter", "lympho",
        "mammography", "mnist", "musk", "optdigits", "pendigits", "pima", "satellite",
        "satimage-2", "shuttle", "thyroid", "vertebral", "vowels", "wbc"]

#: PyOD's column names in its published table, per anchor
PUBLISHED_COLUMN = {"pyod AutoEncoder": "AutoEncoder", "sklearn IsolationForest": "IForest",
                    "pyod PCA": "PCA", "pyod VAE": "VAE"}


def load_odds(name):
    m = scipy.io.loadmat(C.require_data("odds", f"{name}.mat"))
    return np.asarray(m["X"], dtype=np.float64), np.asarray(m["y"]).ravel().astype(int)


def pyod_split(X, y, seed):
    """PyOD's protocol: a 60/40 split, standardized on the training part."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
    mean, std = X_train.mean(0), X_train.std(0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def published():
    path = C.DATA / "reference" / "pyod_notebooks_2024_roc.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["Data"].strip(): {k.strip(): v for k, v in r.items()} for r in rows}


def detectors(device, seed, quick, only=None):
    """``[(name, make, outlier_score)]``: a factory of a fresh detector and how to get outlier
    scores (higher = more outlying) on new data."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    out = []
    for name, cls in C.ours().items():
        if name == "BernoulliRBMStack":
            def make(cls=cls):
                return make_pipeline(MinMaxScaler(clip=True), cls(random_state=seed, device=device))
        else:
            def make(cls=cls):
                return cls(random_state=seed, device=device)
        out.append((name, make, lambda m, X: -m.score_samples(X)))
    ae = C.optional("pyod.models.auto_encoder")
    if ae is not None:
        out.append(("pyod AutoEncoder", lambda: ae.AutoEncoder(device=device, verbose=0),
                    lambda m, X: m.decision_function(X)))
    vae = C.optional("pyod.models.vae")
    if vae is not None and not quick:
        out.append(("pyod VAE", lambda: vae.VAE(device=device, verbose=0),
                    lambda m, X: m.decision_function(X)))
    out.append(("sklearn IsolationForest", lambda: IsolationForest(random_state=seed),
                lambda m, X: -m.score_samples(X)))
    pca = C.optional("pyod.models.pca")
    if pca is not None:
        out.append(("pyod PCA", lambda: pca.PCA(random_state=seed),
                    lambda m, X: m.decision_function(X)))
    out.append(("sklearn PCA", lambda: PCA(random_state=seed), lambda m, X: -m.score_samples(X)))
    if only:
        out = [d for d in out if d[0] in only]
    return out


def run_outliers(ctx, args, on_progress=None):
    ref = published()
    dets = detectors(ctx["device"], args.seed, args.quick, args.only)
    names = args.datasets or ODDS
    records = []
    for ds in names:
        if records and on_progress is not None:
            on_progress(records)  # what is done so far is on disk if the run is stopped
        X, y = load_odds(ds)
        X_train, X_test, _, y_test = pyod_split(X, y, args.seed)
        case = f"{ds} {X.shape[0]}x{X.shape[1]} ({100 * y.mean():.1f}% outliers)"
        line = [f"{ds:<12}"]
        for name, make, score in dets:
            model = make()
            device = "cpu" if name.startswith("sklearn") or name == "pyod PCA" else ctx["device"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                C.sync(device)
                start = time.perf_counter()
                try:
                    model.fit(X_train)
                    C.sync(device)
                    fit_s = time.perf_counter() - start
                    s = np.asarray(score(model, X_test), dtype=np.float64)
                    error = None
                except Exception as exc:  # noqa: BLE001 - record the failure, carry on
                    fit_s, s, error = time.perf_counter() - start, None, f"{type(exc).__name__}: {exc}"
            note = None
            if s is not None and not np.all(np.isfinite(s)):
                # ROC-AUC needs only the order: rank the scores (an infinite score ranks first or
                # last, as it should; a NaN is counted as most outlying and reported)
                n_inf, n_nan = int(np.isinf(s).sum()), int(np.isnan(s).sum())
                note = f"{n_inf} infinite, {n_nan} NaN outlier scores; AUC computed on ranks"
                s = rankdata(np.where(np.isnan(s), np.inf, s))
            auc = None if s is None else roc_auc_score(y_test, s)
            published_value = None
            col = PUBLISHED_COLUMN.get(name)
            if col and ds in ref and ref[ds].get(col) not in (None, ""):
                published_value = round(float(ref[ds][col]), 4)
            extra = dict(dataset=ds, n_train=len(X_train), n_test=len(X_test),
                         n_features=X.shape[1], seed=args.seed, error=error, note=note,
                         defaults=True, preprocessing=("MinMaxScaler(clip=True) after standardizing"
                                                       if name == "BernoulliRBMStack" else "standardized"))
            rctx = {**ctx, "device": device, "machine": C.machine(device)}
            records.append(C.record(rctx, SUITE, case, name, "roc_auc", auc,
                                    reference=published_value, **extra))
            records.append(C.record(rctx, SUITE, case, name, "fit_seconds", fit_s, **extra))
            line.append(f"{name.split()[-1][:10]} {('%.3f' % auc) if auc is not None else 'ERR':>5} ({fit_s:5.1f}s)")
        print("  ".join(line), flush=True)
    return records


def markdown(records, ctx, command):
    text = C.header_lines(ctx, "Outliers: ROC-AUC on the ODDS sets (PyOD's protocol)", command)
    impls = list(dict.fromkeys(r["implementation"] for r in records))
    text += ("One 60/40 split (seed 0), standardized on the training part, every detector at its "
             "defaults, ROC-AUC on the test part. Ours score with `-score_samples`. `2024` columns "
             "are PyOD's published figures for the same protocol (blank: the set is not in that "
             "table). Fit seconds in the second table.\n\n")
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    get = {(r["dataset"], r["implementation"], r["metric"]): r for r in records}
    header = ["data"]
    for impl in impls:
        header.append(impl)
        if impl in PUBLISHED_COLUMN:
            header.append(f"{impl} (2024)")
    rows = []
    sums = {h: [] for h in header[1:]}
    for ds in datasets:
        row = [ds]
        for impl in impls:
            r = get.get((ds, impl, "roc_auc"))
            v = None if r is None else r["value"]
            row.append(C.fmt(v, 3) if v is not None else "err")
            sums[impl].append(v)
            if impl in PUBLISHED_COLUMN:
                p = None if r is None else r.get("reference")
                row.append(C.fmt(p, 3) if p is not None else "")
                sums[f"{impl} (2024)"].append(p)
        rows.append(row)

    def mean(values):
        values = [v for v in values if v is not None]
        return (sum(values) / len(values), len(values)) if values else (None, 0)

    mean_row = ["**mean**"]
    for h in header[1:]:
        m, k = mean(sums[h])
        mean_row.append(f"**{C.fmt(m, 3)}** ({k})" if m is not None else "")
    rows.append(mean_row)
    with_ref = [ds for ds in datasets if any(get.get((ds, i, "roc_auc"), {}).get("reference") is not None
                                             for i in impls)]
    ref_row = [f"mean over the {len(with_ref)} sets in PyOD's table"]
    for h in header[1:]:
        impl = h.replace(" (2024)", "")
        vals = []
        for ds in with_ref:
            r = get.get((ds, impl, "roc_auc"))
            if r is not None:
                vals.append(r.get("reference") if h.endswith("(2024)") else r["value"])
        m, k = mean(vals)
        ref_row.append(C.fmt(m, 3) if m is not None else "")
    rows.append(ref_row)
    text += C.md_table(header, rows)

    text += "\n## Fit seconds\n\n"
    rows = []
    totals = {i: 0.0 for i in impls}
    for ds in datasets:
        row = [ds]
        for impl in impls:
            r = get.get((ds, impl, "fit_seconds"))
            row.append(C.fmt(r["value"], 3) if r else "")
            totals[impl] += r["value"] if r else 0.0
        rows.append(row)
    rows.append(["**total**"] + [f"**{C.fmt(totals[i], 3)}**" for i in impls])
    text += C.md_table(["data"] + impls, rows)
    errors = [r for r in records if r["metric"] == "roc_auc" and (r.get("error") or r.get("note"))]
    if errors:
        text += "\n## Errors and notes\n\n" + "".join(
            f"- {r['dataset']}, {r['implementation']}: {r.get('error') or r.get('note')}\n"
            for r in errors)
    return text


def add_arguments(parser):
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for the whole run (default: torch's own)")
    parser.add_argument("--quick", action="store_true",
                        help="skip PyOD's VAE and the largest set (shuttle)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=None, choices=ODDS)
    parser.add_argument("--only", nargs="+", default=None, help="implementations to run (names)")


def run(args, command=None):
    args.device = C.resolve_device(args.device)
    C.set_threads(args.threads)
    if args.datasets is None:  # smallest first, so that a stopped run still covers most sets
        args.datasets = sorted((d for d in ODDS if not (args.quick and d == "shuttle")),
                               key=lambda d: C.require_data("odds", f"{d}.mat").stat().st_size)
    ctx = C.context(args.device)
    name = f"outliers_{args.device.replace(':', '')}" + ("_quick" if args.quick else "")
    command = command or " ".join(["python benchmarks/bench_outliers.py", *sys.argv[1:]])
    records = run_outliers(ctx, args, lambda done: C.write_results(
        done, name, markdown(done, ctx, command + " (partial: still running)")))
    path = C.write_results(records, name, markdown(records, ctx, command))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
