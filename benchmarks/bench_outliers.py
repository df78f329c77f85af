"""Which outlier detector ranks outliers best on the 21 ODDS sets, at its defaults, and how long
does it take to fit?

Protocol. For every set and every split seed ``s`` (default 0, 1, 2): a random 60/40 split
stratified on the label (``train_test_split(X, y, test_size=0.4, random_state=s, stratify=y)``,
so that every split of a small set keeps its share of outliers); the features standardized with
the training part's mean and standard deviation (a constant feature is left at 0); every method
fitted on the standardized training part, without labels, at its defaults; ROC-AUC and average
precision (outliers as the positive class) of its outlier scores on the test part. The
preprocessing is the same for every method, fitted on the training part only; whatever a method
does inside ``fit`` (our default detector scales and trims the data its own way) is part of the
method. ``BernoulliRBMStack`` needs [0, 1] data, so it runs behind ``MinMaxScaler(clip=True)``
fitted on the same standardized training part.

Methods: our default detector ``LikelihoodOutlierDetector()``, each of our estimators at its
defaults scored by ``-score_samples``, scikit-learn's ``IsolationForest`` and
``LocalOutlierFactor(novelty=True)``, and PyOD's ``KNN``, ``ECOD``, ``PCA``, ``AutoEncoder`` and
``VAE`` (``decision_function``). Everything runs in one process, one method after the other, on
the same arrays. Seeds: ``random_state=s`` wherever a method takes one.

Reported per method: mean ROC-AUC and mean average precision over all (set, split) cells; the
mean rank (1 = best) of its ROC-AUC among the methods run, ranked per set on the mean over the
splits and averaged over the sets; total fit seconds over all cells. A method that fails on a
cell is counted at ROC-AUC 0.5 and average precision equal to the test outlier rate (a random
ranking) and listed under errors. Infinite or NaN outlier scores are ranked (NaN as most
outlying) and noted.

Run it whole or in pieces (``--methods``, ``--datasets``, ``--splits``, ``--out``), then
``--merge`` the pieces' JSON files into one report; where two pieces measured the same method on
the same cell, the later piece (in ``--merge``'s order) is reported. Fit times compare fairly only
within one piece: its methods take turns on each cell, under the same load.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.io
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

import _common as C

SUITE = "outliers"

ODDS = ["annthyroid", "arrhythmia", "breastw", "cardio", "glass", "ionosphere", "letter", "lympho",
        "mammography", "mnist", "musk", "optdigits", "pendigits", "pima", "satellite",
        "satimage-2", "shuttle", "thyroid", "vertebral", "vowels", "wbc"]

DEFAULT = "LikelihoodOutlierDetector()"
#: method key -> display name, in the order of the tables
METHODS = {
    "default": DEFAULT,
    "ae": "AutoencoderTransformer",
    "sparse": "SparseAutoencoder",
    "vae": "VAETransformer",
    "rbm": "BernoulliRBMStack",
    "iforest": "sklearn IsolationForest",
    "lof": "sklearn LOF",
    "knn": "pyod KNN",
    "ecod": "pyod ECOD",
    "pca": "pyod PCA",
    "pyod_ae": "pyod AutoEncoder",
    "pyod_vae": "pyod VAE",
}
#: left out by --quick: the slowest to fit
SLOW = ("vae", "pyod_vae")
#: methods that run on the CPU whatever --device says
CPU_ONLY = ("iforest", "lof", "knn", "ecod", "pca")


def load_odds(name):
    m = scipy.io.loadmat(C.require_data("odds", f"{name}.mat"))
    return np.asarray(m["X"], dtype=np.float64), np.asarray(m["y"]).ravel().astype(int)


def split(X, y, seed):
    """A stratified random 60/40 split, standardized on the training part."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, random_state=seed, stratify=y)
    mean, std = X_train.mean(0), X_train.std(0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def make_method(key, seed, device):
    """``(detector, outlier_score)``: a fresh detector and how to get outlier scores (higher =
    more outlying) from it on new data."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    import sklearn_ae

    def negated(m, X):
        return -m.score_samples(X)

    def pyod_score(m, X):
        return m.decision_function(X)

    if key == "default":
        return sklearn_ae.LikelihoodOutlierDetector(random_state=seed, device=device), negated
    if key in ("ae", "sparse", "vae", "rbm"):
        cls = C.ours()[METHODS[key]]
        model = cls(random_state=seed, device=device)
        if key == "rbm":
            model = make_pipeline(MinMaxScaler(clip=True), model)
        return model, negated
    if key == "iforest":
        return IsolationForest(random_state=seed), negated
    if key == "lof":
        return LocalOutlierFactor(novelty=True), negated
    modules = {"knn": ("pyod.models.knn", "KNN"), "ecod": ("pyod.models.ecod", "ECOD"),
               "pca": ("pyod.models.pca", "PCA"), "pyod_ae": ("pyod.models.auto_encoder", "AutoEncoder"),
               "pyod_vae": ("pyod.models.vae", "VAE")}
    module = C.optional(modules[key][0])
    if module is None:
        return None, None
    cls = getattr(module, modules[key][1])
    if key == "pca":
        return cls(random_state=seed), pyod_score
    if key in ("pyod_ae", "pyod_vae"):
        return cls(device=device, verbose=0, random_state=seed), pyod_score
    return cls(), pyod_score


def run_cell(key, X_train, X_test, y_test, seed, device):
    """Fit one method on one split; ``(roc_auc, average_precision, fit_s, score_s, error, note)``."""
    model, score = make_method(key, seed, device)
    if model is None:
        return None
    device = "cpu" if key in CPU_ONLY else device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        C.sync(device)
        start = time.perf_counter()
        try:
            model.fit(X_train)
            C.sync(device)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            s = np.asarray(score(model, X_test), dtype=np.float64)
            score_s = time.perf_counter() - start
            error = None
        except Exception as exc:  # noqa: BLE001 - record the failure, carry on
            fit_s, score_s, s = time.perf_counter() - start, None, None
            error = f"{type(exc).__name__}: {exc}"[:300]
    note = None
    if s is not None and not np.all(np.isfinite(s)):
        n_inf, n_nan = int(np.isinf(s).sum()), int(np.isnan(s).sum())
        note = f"{n_inf} infinite, {n_nan} NaN outlier scores; ranked (NaN as most outlying)"
        s = rankdata(np.where(np.isnan(s), np.inf, s))
    if s is None:
        return None, None, fit_s, score_s, error, note
    return (roc_auc_score(y_test, s), average_precision_score(y_test, s), fit_s, score_s,
            error, note)


def run_outliers(ctx, args, on_progress=None):
    records = []
    for ds in args.datasets:
        X, y = load_odds(ds)
        case = f"{ds} {X.shape[0]}x{X.shape[1]} ({100 * y.mean():.1f}% outliers)"
        for seed in args.splits:
            X_train, X_test, _, y_test = split(X, y, seed)
            line = [f"{ds:<12} split {seed}"]
            for key in args.methods:
                out = run_cell(key, X_train, X_test, y_test, seed, ctx["device"])
                if out is None:
                    continue
                auc, ap, fit_s, score_s, error, note = out
                device = "cpu" if key in CPU_ONLY else ctx["device"]
                rctx = {**ctx, "device": device, "machine": C.machine(device)}
                extra = dict(dataset=ds, split=seed, n_train=len(X_train), n_test=len(X_test),
                             n_features=X.shape[1], outlier_rate_test=float(y_test.mean()),
                             stratified=True, error=error, note=note, defaults=True,
                             preprocessing=("standardized, then MinMaxScaler(clip=True)"
                                            if key == "rbm" else "standardized"))
                name = METHODS[key]
                for metric, value in (("roc_auc", auc), ("average_precision", ap),
                                      ("fit_seconds", fit_s), ("score_seconds", score_s)):
                    records.append(C.record(rctx, SUITE, case, name, metric, value, **extra))
                short = name.split()[-1][:12]
                line.append(f"{short} {'ERR' if auc is None else f'{auc:.3f}'} ({fit_s:.1f}s)")
            print("  ".join(line), flush=True)
            if on_progress is not None:
                on_progress(records)  # what is done so far is on disk if the run is stopped
    return records


# ----------------------------------------------------------------------------- the report
def cells(records):
    """``{(method, dataset, split): {metric: value, ...}}`` with failures filled in as random;
    a cell measured twice (two merged pieces) keeps the later records."""
    out = {}
    for r in records:
        cell = out.setdefault((r["implementation"], r["dataset"], r["split"]), {})
        cell.update(error=r.get("error"), note=r.get("note"), rate=r.get("outlier_rate_test"))
        cell[r["metric"]] = r["value"]
    for cell in out.values():
        if cell.get("roc_auc") is None:
            cell["roc_auc"], cell["average_precision"] = 0.5, cell["rate"]
            cell["failed"] = True
    return out


def summary(records):
    """Per method: mean ROC-AUC, mean AP, mean rank, total fit seconds, cells, failures; and the
    per-set means. Only (set, split) cells that every method ran are compared."""
    table = cells(records)
    methods = list(dict.fromkeys(r["implementation"] for r in records))
    grid = {(d, s) for (_, d, s) in table}
    common = sorted(c for c in grid if all((m, *c) in table for m in methods))
    datasets = list(dict.fromkeys(d for d, _ in sorted(common, key=lambda c: ODDS.index(c[0]))))

    def per_set(method, metric, reduce=np.mean):
        return {d: float(reduce([table[(method, d, s)][metric] for dd, s in common if dd == d]))
                for d in datasets}

    auc = {m: per_set(m, "roc_auc") for m in methods}
    ap = {m: per_set(m, "average_precision") for m in methods}
    fit = {m: per_set(m, "fit_seconds", np.sum) for m in methods}
    ranks = np.array([rankdata([-auc[m][d] for m in methods]) for d in datasets])
    rows = {}
    for i, m in enumerate(methods):
        cs = [table[(m, *c)] for c in common]
        rows[m] = dict(roc_auc=float(np.mean([c["roc_auc"] for c in cs])),
                       average_precision=float(np.mean([c["average_precision"] for c in cs])),
                       mean_rank=float(ranks[:, i].mean()) if len(datasets) else None,
                       fit_seconds=float(sum(c.get("fit_seconds") or 0.0 for c in cs)),
                       cells=len(cs), failed=sum(bool(c.get("failed")) for c in cs))
    splits = sorted({s for _, s in common})
    return dict(methods=methods, datasets=datasets, splits=splits, rows=rows, auc=auc, ap=ap,
                fit=fit, table=table, common=common)


def markdown(records, ctx, command):
    text = C.header_lines(ctx, "Outliers: the 21 ODDS sets, several random splits, defaults",
                          command)
    if not records:
        return text + "No results.\n"
    res = summary(records)
    methods, datasets = res["methods"], res["datasets"]
    text += (f"{len(datasets)} sets x splits {res['splits']}: stratified random 60/40 splits, "
             "features standardized on the training part, every method at its defaults and "
             "fitted without labels, scored on the test part. Ours score with `-score_samples`, "
             "PyOD's with `decision_function`. Mean rank: the methods ranked on each set by "
             "their mean ROC-AUC over the splits (1 = best), averaged over the sets. Fit "
             "seconds: total over every set and split. A failed cell counts as a random "
             "ranking.\n\n")
    order = sorted(methods, key=lambda m: res["rows"][m]["mean_rank"])
    rows = [[f"**{m}**" if m == DEFAULT else m, f"{res['rows'][m]['roc_auc']:.4f}",
             f"{res['rows'][m]['average_precision']:.4f}", f"{res['rows'][m]['mean_rank']:.2f}",
             C.fmt(res["rows"][m]["fit_seconds"], 3),
             f"{res['rows'][m]['cells']}" + (f" ({res['rows'][m]['failed']} failed)"
                                              if res["rows"][m]["failed"] else "")]
            for m in order]
    text += C.md_table(["method", "mean ROC-AUC", "mean average precision", "mean rank",
                        "total fit s", "cells"], rows)
    for title, values, digits in (("ROC-AUC, mean over the splits", res["auc"], 3),
                                  ("Average precision, mean over the splits", res["ap"], 3),
                                  ("Fit seconds, total over the splits", res["fit"], 3)):
        text += f"\n## {title}\n\n"
        body = [[d] + [C.fmt(values[m][d], digits) for m in methods] for d in datasets]
        text += C.md_table(["data"] + methods, body)
    notes = sorted({(m, d, s, c.get("error") or c.get("note")) for (m, d, s), c in res["table"].items()
                    if c.get("error") or c.get("note")}, key=str)
    if notes:
        text += "\n## Errors and notes\n\n" + "".join(
            f"- {d}, split {s}, {m}: {msg}\n" for m, d, s, msg in notes)
    return text


# ------------------------------------------------------------------------------ command line
def add_arguments(parser):
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for the whole run (default: torch's own)")
    parser.add_argument("--quick", action="store_true",
                        help="one split, without the largest set (shuttle) and the two VAEs")
    parser.add_argument("--seed", type=int, default=0,
                        help="first split seed (the splits are seed, seed + 1, ...)")
    parser.add_argument("--n-splits", type=int, default=3)
    parser.add_argument("--splits", type=int, nargs="+", default=None,
                        help="split seeds to run (overrides --seed and --n-splits)")
    parser.add_argument("--datasets", nargs="+", default=None, choices=ODDS)
    parser.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                        help="methods to run (keys; default: all, less the slow ones in --quick)")
    parser.add_argument("--out", default=None,
                        help="results file stem under benchmarks/results (default "
                             "outliers_<device>[_quick])")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="write one report from the records of these results files instead "
                             "of running anything (pieces run with --out); where two pieces "
                             "measured the same method on the same cell, the later piece's "
                             "values are reported")


def run(args, command=None):
    command = command or " ".join(["python benchmarks/bench_outliers.py", *sys.argv[1:]])
    if args.merge:
        pieces = [json.loads(Path(path).read_text()) for path in args.merge]
        records = [r for piece in pieces for r in piece]
        ctx = {k: records[0][k] for k in ("device", "machine", "versions", "torch_threads",
                                           "load_average_1min", "timestamp")}
        name = args.out or Path(args.merge[0]).stem
        # each piece's start and the machine's load then: a shared machine's load shows here
        sources = ", ".join(
            f"{Path(p).name} ({piece[0]['timestamp']}, load {piece[0]['load_average_1min']})"
            if piece else Path(p).name for p, piece in zip(args.merge, pieces))
        path = C.write_results(records, name, markdown(records, ctx, f"{command} (merged from "
                                                                      f"{sources})"))
        print(f"wrote {path} and {path.with_suffix('.md')}")
        return records
    args.device = C.resolve_device(args.device)
    C.set_threads(args.threads)
    if args.splits is None:
        args.splits = [args.seed] if args.quick else list(range(args.seed, args.seed + args.n_splits))
    if args.methods is None:
        args.methods = [k for k in METHODS if not (args.quick and k in SLOW)]
    if args.datasets is None:  # smallest first, so that a stopped run still covers most sets
        args.datasets = sorted((d for d in ODDS if not (args.quick and d == "shuttle")),
                               key=lambda d: C.require_data("odds", f"{d}.mat").stat().st_size)
    ctx = C.context(args.device)
    name = args.out or f"outliers_{args.device.replace(':', '')}" + ("_quick" if args.quick else "")
    records = run_outliers(ctx, args, lambda done: C.write_results(
        done, name, markdown(done, ctx, command + " (partial: still running)")))
    path = C.write_results(records, name, markdown(records, ctx, command))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    if records:
        res = summary(records)
        for m in sorted(res["methods"], key=lambda m: res["rows"][m]["mean_rank"]):
            r = res["rows"][m]
            print(f"{m:28s} ROC-AUC {r['roc_auc']:.4f}  AP {r['average_precision']:.4f}  "
                  f"rank {r['mean_rank']:.2f}  fit {r['fit_seconds']:.1f}s")
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
