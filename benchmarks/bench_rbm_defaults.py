"""Is the default ``BernoulliRBMStack`` a usable density model on binary data it was not tuned on?

``BernoulliRBMStack(random_state=seed)`` with every other parameter at its default is fitted on
the training rows of each binary data set of ``study_rbm_defaults.py`` and scored on its test
rows by its own default ``score_samples`` (log Z by ``log_partition="auto"``: exact for small
models, else AIS grown until two schedules agree). The baseline is independent pixels: a
per-feature Bernoulli at the training means. The target (issue 13): at least 20 nats per image
above the baseline on binarized MNIST (10,000 training rows) and on binary data the defaults were
not tuned on. Fit and first-score times are recorded beside each figure.

    python benchmarks/bench_rbm_defaults.py                      # results/rbm_defaults_cpu.json
    python benchmarks/bench_rbm_defaults.py --datasets mnist --seeds 0
"""

import argparse
import sys
import time
import warnings

import numpy as np

import _common as C
import study_rbm_defaults as S

SUITE = "quality"
HELD_OUT = ["mnist", "odds-musk", "odds-arrhythmia", "synth-rbm"]
TUNING = ["digits8", "odds-cardio", "odds-letter", "odds-satellite", "odds-mnist", "synth-mixture",
          "synth-bars", "synth-sparse"]


def run(args):
    from sklearn_ae import BernoulliRBMStack

    C.set_threads(args.threads)
    ctx = C.context("cpu")
    records = []
    for name in args.datasets:
        X_train, X_test = S.load(name)
        baseline = float(S.independent_ll(X_train, X_test))
        for seed in (args.seeds if name in HELD_OUT else args.tuning_seeds):
            rbm = BernoulliRBMStack(random_state=seed, device=args.device)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                rbm.fit(X_train)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                ll = float(rbm.score(X_test))
                score_s = time.perf_counter() - start
            info = rbm.log_partition_info_
            warned = [str(w.message) for w in caught if "AIS" in str(w.message)]
            role = "held out" if name in HELD_OUT else "tuning"
            records.append(C.record(
                ctx, SUITE, f"{name} ({role}), {X_train.shape[0]} train / {X_test.shape[0]} test rows",
                "BernoulliRBMStack (defaults)", "test_log_likelihood_gain_nats", ll - baseline,
                seed=seed, test_log_likelihood=ll, independent_pixels=baseline, fit_seconds=fit_s,
                first_score_seconds=score_s, log_partition_method=info["method"],
                log_partition_stderr=info["stderr"], n_ais_betas_used=info.get("n_betas"),
                ais_agreed=info.get("agreed"), ais_warning=warned[0] if warned else None, role=role))
            print(f"  {name:<16} seed {seed}: {ll:9.2f} vs independent {baseline:9.2f} -> gain "
                  f"{ll - baseline:7.2f} nats (fit {fit_s:.1f}s, score {score_s:.1f}s, log Z "
                  f"{info['method']}{'' if info['method'] == 'exact' else ' ' + str(info.get('n_betas')) + ' betas'}"
                  f"{', WARNED' if warned else ''})", flush=True)
            write(records, ctx)


def write(records, ctx):
    rows = [[r["case"], r["seed"], C.fmt(r["independent_pixels"], 5), C.fmt(r["test_log_likelihood"], 5),
             f"{r['value']:.2f}", r["log_partition_method"] + ("" if r["n_ais_betas_used"] is None
                                                               else f" ({r['n_ais_betas_used']} betas)"),
             f"{r['fit_seconds']:.1f}", f"{r['first_score_seconds']:.1f}"] for r in records]
    text = C.header_lines(ctx, "BernoulliRBMStack at its defaults: test log-likelihood over independent pixels",
                          " ".join(["python benchmarks/bench_rbm_defaults.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1].split("\n\n    python")[0] + "\n\n"
    text += C.md_table(["data set", "seed", "independent pixels", "RBM", "gain (nats)", "log Z", "fit s",
                        "first score s"], rows)
    C.write_results(records, "rbm_defaults_cpu", text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=HELD_OUT + TUNING)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds on held-out sets")
    parser.add_argument("--tuning-seeds", type=int, nargs="+", default=[0], help="seeds on tuning sets")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    run(parser.parse_args())
