"""Which settings should ``LikelihoodOutlierDetector()`` (no estimator given) use?

The study behind the default scorer, ``sklearn_ae._outlier._LikelihoodEnsemble``: bagged small
models on robustly scaled data, each family refitted on the training rows its first round finds
typical. ``sklearn IsolationForest`` runs in the same process on the same splits as the
yardstick. Three stages:

- ``select`` (splits 0, 1, 2): autoencoders alone, one change at a time around a first choice
  (``base``): the trimmed refit, the number of members, subsample sizes, epoch budgets, network
  sizes, the code's Gaussian density, feature subsets, and VAEs or RBMs mixed in among the
  autoencoders (one family, one average).
- ``families`` (splits 0, 1, 2): an RBM family beside the autoencoders, with its own trimmed
  refit, its average weighted by ``rbm_weight`` against the autoencoders' 1, and the settings
  of ``select`` that came out ahead, again one at a time.
- ``rbm_training`` (splits 0, 1, 2): how the RBM members train, once ``BernoulliRBMStack``'s
  own defaults had changed (CD-1, a linearly decayed learning rate, 20 epochs, where stage
  ``families`` ran PCD at a constant rate for 10), and at what cost beside autoencoders alone.
- ``confirm`` (splits 3, 4, 5, never used to choose): the choice and its nearest rivals.

Protocol: ``bench_outliers.py``'s (stratified random 60/40 splits, standardized on the training
part, ROC-AUC and average precision on the test part, fit seconds), over all 21 ODDS sets.

    python benchmarks/study_outlier_default.py --stage select --threads 1
    python benchmarks/study_outlier_default.py --stage families --threads 1
    python benchmarks/study_outlier_default.py --stage rbm_training --threads 1
    python benchmarks/study_outlier_default.py --stage confirm --threads 1

A stopped run resumes where it stopped (the cells already in its results file are kept); a
candidate can be left out of a running study (``--candidates``) and is then reported apart.
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

import _common as C
from bench_outliers import ODDS, load_odds, split

SUITE = "outliers_study"
STAGES = {"select": [0, 1, 2], "families": [0, 1, 2], "rbm_training": [0, 1, 2],
          "confirm": [3, 4, 5]}


def _candidates(stage):
    """``{name: (ensemble class, parameters)}`` of a stage (``None``: the reference)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    import sklearn_ae
    from sklearn_ae._outlier import _LikelihoodEnsemble

    class Columns:
        """A member that sees only some of the features."""

        def __init__(self, model, columns):
            self.model, self.columns = model, columns

        def score_samples(self, Z):
            return self.model.score_samples(Z[:, self.columns])

    class FeatureSubsets(_LikelihoodEnsemble):
        """Every autoencoder on a random half of the features (at least 2)."""

        def _autoencoder(self, Z, random_state):
            rng = np.random.RandomState(random_state)
            d = Z.shape[1]
            cols = np.sort(rng.choice(d, max(min(d, 2), int(np.ceil(d / 2))), replace=False))
            model, code = super()._autoencoder(np.ascontiguousarray(Z[:, cols]), random_state)
            return Columns(model, cols), code

    def alternating(kind):
        class Alternating(_LikelihoodEnsemble):
            """Every other autoencoder replaced by a VAE or an RBM, in one family: one trimmed
            refit and one average for all members (stage 1)."""

            def _autoencoder(self, Z, random_state):
                self._count = getattr(self, "_count", 0) + 1
                if self._count % 2:
                    return super()._autoencoder(Z, random_state)
                if kind == "rbm":
                    model = make_pipeline(MinMaxScaler(clip=True), sklearn_ae.BernoulliRBMStack(
                        n_components=64, log_partition="ais", n_ais_runs=4, n_ais_betas=100,
                        random_state=random_state, device=self.device))
                else:
                    n, d = Z.shape
                    model = sklearn_ae.VAETransformer(
                        n_components=int(np.clip(d // 2, 1, self.max_components)),
                        hidden_layer_sizes=self.hidden_layer_sizes, n_importance_samples=20,
                        max_iter=int(np.clip(np.ceil(self.sample_passes / n), self.min_epochs,
                                             self.max_epochs)),
                        random_state=random_state, device=self.device)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return model.fit(Z), None

        return Alternating

    E = _LikelihoodEnsemble
    if stage == "select":  # one change at a time around autoencoders alone
        ae = dict(rbm_weight=0)
        out = {
            "base": (E, ae),
            "no trimmed refit (n_rounds=1)": (E, {**ae, "n_rounds": 1}),
            "n_rounds=3": (E, {**ae, "n_rounds": 3}),
            "trim=0.2": (E, {**ae, "trim": 0.2}),
            "trim=0.05": (E, {**ae, "trim": 0.05}),
            "n_estimators=3": (E, {**ae, "n_estimators": 3}),
            "n_estimators=10": (E, {**ae, "n_estimators": 10}),
            "max_samples=256": (E, {**ae, "max_samples": 256}),
            "max_samples=1024": (E, {**ae, "max_samples": 1024}),
            "max_samples=100000 (no subsampling)": (E, {**ae, "max_samples": 100_000}),
            "sample_passes=5000": (E, {**ae, "sample_passes": 5000}),
            "sample_passes=20000": (E, {**ae, "sample_passes": 20_000}),
            "hidden_layer_sizes=(32,)": (E, {**ae, "hidden_layer_sizes": (32,)}),
            "hidden_layer_sizes=(128,)": (E, {**ae, "hidden_layer_sizes": (128,)}),
            "max_components=8": (E, {**ae, "max_components": 8}),
            "code_density=True": (E, {**ae, "code_density": True}),
            "feature subsets (half)": (FeatureSubsets, ae),
            "families: AE + VAE": (alternating("vae"), ae),
            "families: AE + RBM": (alternating("rbm"), ae),
        }
    elif stage == "families":  # an RBM family beside the autoencoders, its own trimmed refit
        out = {
            "autoencoders alone (rbm_weight=0)": (E, dict(rbm_weight=0)),
            "rbm_weight=0.25": (E, dict(rbm_weight=0.25)),
            "rbm_weight=0.5": (E, dict(rbm_weight=0.5)),
            "rbm_weight=1": (E, dict(rbm_weight=1.0)),
            "rbm_weight=0.5, n_estimators=3": (E, dict(n_estimators=3)),
            "rbm_weight=0.5, rbm_components=16": (E, dict(rbm_components=16)),
            "rbm_weight=0.5, rbm_components=256": (E, dict(rbm_components=256)),
            "rbm_weight=0.5, trim=0.05": (E, dict(trim=0.05)),
            "rbm_weight=0.5, n_rounds=3": (E, dict(n_rounds=3)),
        }
    elif stage == "rbm_training":  # after BernoulliRBMStack's defaults changed (CD-1, 20 epochs)
        def training(**settings):
            return type("RBMTraining", (E,), {"_rbm_training": {**E._rbm_training, **settings}})

        studied = dict(persistent=True, learning_rate_schedule="constant", max_iter=10)
        out = {
            "autoencoders alone (rbm_weight=0)": (E, dict(rbm_weight=0)),
            "RBMs: CD-1, linear lr, 20 epochs, batch 10 (the stack's new defaults)": (
                training(), {}),
            "RBMs: PCD, constant lr, 10 epochs, batch 10 (as in stage families)": (
                training(**studied), {}),
            "RBMs: CD-1, linear lr, 10 epochs, batch 10": (training(max_iter=10), {}),
            "RBMs: CD-1, linear lr, 20 epochs, batch 50": (training(batch_size=50), {}),
            "RBMs: CD-1, linear lr, 10 epochs, batch 50": (training(batch_size=50, max_iter=10),
                                                           {}),
            "RBMs: CD-1, linear lr, 20 epochs, batch 50; n_estimators=3": (
                training(batch_size=50), dict(n_estimators=3)),
            "RBMs: CD-1, linear lr, 10 epochs, batch 50; trim=0.05": (
                training(batch_size=50, max_iter=10), dict(trim=0.05)),
        }
    else:  # confirm: the choice and its nearest rivals on splits never used to choose
        out = {
            "default (rbm_weight=0.5, RBMs at batch 50 for 10 epochs)": (E, {}),
            "autoencoders alone (rbm_weight=0)": (E, dict(rbm_weight=0)),
            "rbm_weight=1": (E, dict(rbm_weight=1.0)),
            "trim=0.05": (E, dict(trim=0.05)),
        }
    out["sklearn IsolationForest"] = None
    return out


def make(stage, name, seed, device):
    from sklearn.ensemble import IsolationForest

    from sklearn_ae import LikelihoodOutlierDetector

    spec = _candidates(stage)[name]
    if spec is None:
        return IsolationForest(random_state=seed)
    cls, params = spec
    return LikelihoodOutlierDetector(cls(random_state=seed, device=device, **params))


def run_study(ctx, args, records, save):
    done = {(r["implementation"], r["dataset"], r["split"]) for r in records}
    for ds in args.datasets:
        X, y = load_odds(ds)
        for seed in args.splits:
            X_train, X_test, _, y_test = split(X, y, seed)
            line = [f"{ds:<12} split {seed}"]
            for name in args.candidates:
                if (name, ds, seed) in done:
                    continue
                model = make(args.stage, name, seed, ctx["device"])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    model.fit(X_train)
                    fit_s = time.perf_counter() - start
                    s = -model.score_samples(X_test)
                auc, ap = roc_auc_score(y_test, s), average_precision_score(y_test, s)
                spec = _candidates(args.stage)[name]
                extra = dict(dataset=ds, split=seed, stage=args.stage, n_train=len(X_train),
                             params=None if spec is None else repr(spec[1]))
                for metric, value in (("roc_auc", auc), ("average_precision", ap),
                                      ("fit_seconds", fit_s)):
                    records.append(C.record(ctx, SUITE, f"{ds} split {seed}", name, metric, value,
                                            **extra))
                line.append(f"{auc:.3f}")
            print(" ".join(line), flush=True)
            save(records)
    return records


def markdown(records, ctx, command):
    text = C.header_lines(ctx, "Study: the default scorer of LikelihoodOutlierDetector()", command)
    get = {}
    for r in records:
        get.setdefault((r["implementation"], r["dataset"], r["split"]), {})[r["metric"]] = r["value"]
    names = list(dict.fromkeys(r["implementation"] for r in records))
    count = {n: sum(k[0] == n for k in get) for n in names}
    stopped = [n for n in names if count[n] < max(count.values())]
    names = [n for n in names if n not in stopped]
    cells = sorted({(d, s) for (_, d, s) in get})
    cells = [c for c in cells if all((n, *c) in get for n in names)]
    sets = [d for d in ODDS if any(c[0] == d for c in cells)]
    splits = sorted({s for _, s in cells})
    auc = {n: {d: np.mean([get[(n, d, s)]["roc_auc"] for dd, s in cells if dd == d]) for d in sets}
           for n in names}
    ranks = np.array([rankdata([-auc[n][d] for n in names]) for d in sets])
    ref = "sklearn IsolationForest"
    text += (f"{len(sets)} sets x splits {splits} (stratified 60/40, standardized on the training "
             "part). Mean rank among the candidates below, per set on the mean over the splits. "
             "Parameters of the ensemble not named are its defaults at the time of the run "
             "(`params` in each record).\n\n")
    rows = []
    for i, n in enumerate(names):
        cs = [get[(n, *c)] for c in cells]
        m_auc = np.mean([c["roc_auc"] for c in cs])
        delta = m_auc - np.mean([get[(ref, *c)]["roc_auc"] for c in cells]) if ref in names else None
        rows.append([n, f"{m_auc:.4f}", "" if delta is None else f"{delta:+.4f}",
                     f"{np.mean([c['average_precision'] for c in cs]):.4f}",
                     f"{ranks[:, i].mean():.2f}", C.fmt(sum(c["fit_seconds"] for c in cs), 3)])
    text += C.md_table(["candidate", "mean ROC-AUC", "vs IsolationForest", "mean AP", "mean rank",
                        "total fit s"], rows)
    if stopped:
        base = names[0]  # the stage's first candidate: `base`, or autoencoders alone
        text += ("\nLeft out of the comparison after the first sets (stopped, or still running; "
                 f"mean ROC-AUC on their cells against `{base}` on the same cells):\n\n")
        for n in stopped:
            own = [k[1:] for k in get if k[0] == n and (base, *k[1:]) in get]
            text += (f"- {n}: {np.mean([get[(n, *c)]['roc_auc'] for c in own]):.4f} against "
                     f"{np.mean([get[(base, *c)]['roc_auc'] for c in own]):.4f} over "
                     f"{len(own)} cells ({', '.join(sorted({d for d, _ in own}))})\n")
    text += "\n## ROC-AUC per set, mean over the splits\n\n"
    text += C.md_table(["data"] + names, [[d] + [f"{auc[n][d]:.3f}" for n in names] for d in sets])
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=list(STAGES), default="select")
    parser.add_argument("--splits", type=int, nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=ODDS, choices=ODDS)
    parser.add_argument("--candidates", nargs="+", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    params = _candidates(args.stage)
    args.candidates = args.candidates or list(params)
    unknown = set(args.candidates) - set(params)
    if unknown:
        parser.error(f"unknown candidates {sorted(unknown)}; known: {list(params)}")
    args.splits = args.splits or STAGES[args.stage]
    args.device = C.resolve_device(args.device)
    C.set_threads(args.threads)
    ctx = C.context(args.device)
    name = args.out or f"outliers_study_{args.stage}"
    path = C.RESULTS / f"{name}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    command = "python benchmarks/study_outlier_default.py " + " ".join(sys.argv[1:] if argv is None else argv)
    run_study(ctx, args, records, lambda done: C.write_results(done, name, markdown(done, ctx, command)))
    C.write_results(records, name, markdown(records, ctx, command))
    print((C.RESULTS / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
