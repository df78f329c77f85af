"""How good a density model is BernoulliRBMStack on binarized MNIST, measured the way the papers do?

Salakhutdinov & Murray (ICML 2008) report a test log-likelihood of -86.34 nats per image for an RBM
with 500 hidden units trained by CD-25 on statically binarized MNIST, its log Z estimated by
annealed importance sampling (AIS) with 14,500 intermediate distributions and 100 runs.

Here: ``BernoulliRBMStack(n_components=500)`` trained by CD-k on the 50,000 training images
(``--gibbs-steps``, default 25; learning rate, momentum and weight decay below), on the GPU when
present; the AIS log Z at ``--betas`` (default 14,500 and 5,000: agreement of the two within 1 nat
is the evidence of convergence), the log-weight spread and standard error of each, and the
mean test log-likelihood over the 10,000 test images; then ``log_likelihood_bounds`` of the
first ``--bound-rows`` test images: RAISE's stochastic lower bound (``--raise-betas`` betas,
``--raise-runs`` chains per image) beside AIS's upper one, and their gap. ``--autoencoders`` also runs
``bench_ae_mnist.py`` with and without ``pretraining="rbm"`` (Hinton & Salakhutdinov 2006:
784-1000-500-250-30, squared error per image 3.00 vs PCA's 13.87).

On 2 CPU cores CD-25 over the 50,000 images takes about 34 s an epoch, so ``--epochs 20`` runs in
about 12 minutes with the AIS; ``--train-rows``, ``--epochs`` and ``--gibbs-steps`` reduce it
further, and every record says what ran.
"""

import argparse
import sys
import warnings

import numpy as np

import _common as C

SUITE = "quality"
PUBLISHED = -86.34  # Salakhutdinov & Murray 2008, RBM 500 hidden units, CD-25, AIS


def run(args, command=None):
    args.device = C.resolve_device(args.device)
    C.set_threads(args.threads)
    ctx = C.context(args.device)
    ours = C.ours()
    if "BernoulliRBMStack" not in ours:
        raise SystemExit("sklearn_ae has no BernoulliRBMStack")
    data = C.binarized_mnist()
    X_train = data["train"][: args.train_rows] if args.train_rows else data["train"]
    X_test = data["test"]
    epochs = args.epochs or (1 if args.quick else 50)
    params = dict(n_components=500, learning_rate=args.learning_rate, momentum=args.momentum,
                  alpha=args.weight_decay, batch_size=args.batch_size, max_iter=epochs,
                  n_gibbs_steps=args.gibbs_steps, persistent=False, log_partition="ais",
                  n_ais_runs=args.ais_runs, random_state=args.seed, device=args.device)
    case = (f"binarized MNIST {len(X_train)} train rows, RBM 784-500 CD-{args.gibbs_steps}, "
            f"{epochs} epochs, batch {args.batch_size}")
    rbm = ours["BernoulliRBMStack"](**params)
    print(f"training: {case} on {args.device}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.time_budget is None:
            fit_s, _ = C.timed(lambda: rbm.fit(X_train), args.device)
            stopped_by = "fit"
        else:  # one public partial_fit per epoch until the budget is spent (a device lease is short)
            fit_s, stopped_by = 0.0, f"max epochs ({epochs})"
            for _ in range(epochs):
                seconds, _ = C.timed(lambda: rbm.partial_fit(X_train), args.device)
                fit_s += seconds
                if fit_s >= args.time_budget:
                    stopped_by = f"time budget ({args.time_budget:g} s)"
                    break
            case = case.replace(f"{epochs} epochs", f"{rbm.n_iter_} epochs")
    print(f"  trained in {fit_s:.1f}s ({stopped_by}, {rbm.n_iter_} epochs); loss per epoch "
          f"{np.round(rbm.loss_curve_, 3).tolist()}", flush=True)
    records = [C.record(ctx, SUITE, case, "BernoulliRBMStack", "fit_seconds", fit_s,
                        train_rows=len(X_train), epochs=rbm.n_iter_, params=params,
                        stopped_by=stopped_by,
                        train_samples_per_s=len(X_train) * rbm.n_iter_ / fit_s)]

    for n_betas in args.betas:
        rbm.set_params(n_ais_betas=n_betas)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ais_s, info = C.timed(lambda: rbm.log_partition_info_, args.device)
        ll_s, scores = C.timed(lambda: rbm.score_samples(X_test), args.device)
        value = float(np.mean(scores))
        warned = [str(w.message) for w in caught if "AIS" in str(w.message)]
        records.append(C.record(
            ctx, SUITE, case, "BernoulliRBMStack", "test_log_likelihood_nats", value,
            reference=PUBLISHED, reference_source="Salakhutdinov & Murray 2008 (CD-25, AIS 14,500 betas)",
            n_ais_betas=n_betas, n_ais_runs=args.ais_runs, log_partition=info["log_partition"],
            log_partition_stderr=info["stderr"], log_weight_std=info["log_weight_std"],
            effective_sample_size=info["effective_sample_size"], ais_seconds=ais_s,
            score_seconds=ll_s, ais_warning=warned[0] if warned else None,
            train_rows=len(X_train), epochs=rbm.n_iter_, fit_seconds=fit_s))
        print(f"  AIS {n_betas:>6} betas x {args.ais_runs} runs: log Z {info['log_partition']:.2f} "
              f"+- {info['stderr']:.3f} (log-weight sd {info['log_weight_std']:.2f}, ESS "
              f"{info['effective_sample_size']:.0f}), {ais_s:.0f}s; test log-likelihood "
              f"{value:.2f} nats (published {PUBLISHED}){' WARNED' if warned else ''}", flush=True)
        train_ll = float(np.mean(rbm.score_samples(X_train[:10000])))
        records[-1]["train_log_likelihood_nats_first_10000"] = train_ll

        write(args, ctx, records, command)  # after each AIS setting: a long run keeps what it has

    lls = [r for r in records if r["metric"] == "test_log_likelihood_nats"]
    if len(lls) >= 2:
        spread = max(r["value"] for r in lls) - min(r["value"] for r in lls)
        records.append(C.record(ctx, SUITE, case, "BernoulliRBMStack",
                                "ais_test_log_likelihood_spread_across_betas_nats", spread,
                                n_ais_betas=[r["n_ais_betas"] for r in lls]))
        print(f"  spread of the test log-likelihood across betas {args.betas}: {spread:.3f} nats")

    write(args, ctx, records, command)

    if args.bound_rows:  # the conservative bound from below (RAISE) beside AIS's from above
        X_rows = X_test[: args.bound_rows]
        raise_betas = args.raise_betas or args.betas[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bound_s, (lower, upper, lower_se, upper_se) = C.timed(lambda: rbm.log_likelihood_bounds(
                X_rows, n_runs=args.raise_runs, n_betas=raise_betas, return_stderr=True), args.device)
        gap = upper - lower
        records.append(C.record(
            ctx, SUITE, case, "BernoulliRBMStack", "log_likelihood_bounds_gap_nats", float(gap.mean()),
            mean_lower=float(lower.mean()), mean_upper=float(upper.mean()),
            median_lower_stderr=float(np.median(lower_se)), upper_stderr=float(upper_se[0]),
            raise_betas=raise_betas, raise_runs=args.raise_runs, upper_n_ais_betas=rbm.n_ais_betas,
            rows=len(X_rows), seconds=bound_s, warnings=[str(w.message) for w in caught],
            train_rows=len(X_train), epochs=rbm.n_iter_, fit_seconds=fit_s))
        print(f"  bounds on {len(X_rows)} test images: lower (RAISE, {raise_betas} betas x "
              f"{args.raise_runs} runs) {lower.mean():.2f}, upper (AIS) {upper.mean():.2f}, gap "
              f"{gap.mean():.3f} nats, {bound_s:.0f}s", flush=True)
        write(args, ctx, records, command)

    if args.autoencoders:
        import bench_ae_mnist

        p = argparse.ArgumentParser()
        bench_ae_mnist.add_arguments(p)
        ae_args = ["--device", args.device, "--seed", str(args.seed), "--pretraining"]
        ae_args += ["--quick"] if args.quick else []
        ae_args += [] if args.threads is None else ["--threads", str(args.threads)]
        ae_args += [] if args.ae_epochs is None else ["--epochs", str(args.ae_epochs)]
        bench_ae_mnist.run(p.parse_args(ae_args), command)
    return records


def write(args, ctx, records, command):
    """``results/rbm_mnist_<device>[_quick].json`` and its table."""
    lls = [r for r in records if r["metric"] == "test_log_likelihood_nats"]
    name = args.name or f"rbm_mnist_{args.device.replace(':', '')}" + ("_quick" if args.quick else "")
    text = C.header_lines(ctx, "Quality: RBM test log-likelihood on binarized MNIST (AIS)",
                          command or " ".join(["python benchmarks/bench_rbm_mnist.py", *sys.argv[1:]]))
    text += __doc__.split("\n\n", 1)[1] + "\n"
    text += C.md_table(
        ["case", "betas", "log Z", "stderr", "log-weight sd", "ESS", "test LL (nats)", "published",
         "AIS s", "fit s"],
        [[r["case"], r["n_ais_betas"], C.fmt(r["log_partition"], 6), C.fmt(r["log_partition_stderr"], 2),
          C.fmt(r["log_weight_std"], 3), C.fmt(r["effective_sample_size"], 3), C.fmt(r["value"], 5),
          r["reference"], C.fmt(r["ais_seconds"], 3), C.fmt(r["fit_seconds"], 3)] for r in lls])
    bounds = [r for r in records if r["metric"] == "log_likelihood_bounds_gap_nats"]
    if bounds:
        text += ("\n## log_likelihood_bounds on test images: RAISE below, AIS above\n\n" + C.md_table(
            ["case", "rows", "RAISE betas x runs", "mean lower", "mean upper", "mean gap",
             "median s.e. lower", "s.e. upper", "seconds"],
            [[r["case"], r["rows"], f"{r['raise_betas']} x {r['raise_runs']}", C.fmt(r["mean_lower"], 5),
              C.fmt(r["mean_upper"], 5), C.fmt(r["value"], 3), C.fmt(r["median_lower_stderr"], 2),
              C.fmt(r["upper_stderr"], 2), C.fmt(r["seconds"], 3)] for r in bounds]))
    path = C.write_results(records, name, text)
    print(f"wrote {path} and {path.with_suffix('.md')}", flush=True)


def nudged_digits():
    """scikit-learn's RBM-features example data: digits plus their four one-pixel shifts (5x),
    scaled to [0, 1] per feature, split 80/20 (seed 0)."""
    from scipy.ndimage import convolve
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    shifts = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
              [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]
    moved = [np.array([convolve(x.reshape(8, 8), mode="constant", weights=w).ravel() for x in X])
             for w in shifts]
    X = np.concatenate([X] + moved).astype(np.float32)
    y = np.concatenate([y] * 5)
    X = (X - X.min(0)) / (X.max(0) + 1e-4)
    return train_test_split(X, y, test_size=0.2, random_state=0)


def run_digits(args, command=None):
    """The RBM-features protocol: 100 components, learning rate 0.06, batch 10, 10 epochs, and a
    LogisticRegression(C=6000) on the features; BernoulliRBM and BernoulliRBMStack in turn, on
    the same CPU, for each seed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import BernoulliRBM

    C.set_threads(args.threads)
    ctx = C.context("cpu")
    X_train, X_test, y_train, y_test = nudged_digits()
    case = "digits nudged 5x, 80/20, 100 components, lr 0.06, batch 10, 10 epochs, LogReg C=6000"
    records, rows = [], []
    for seed in range(args.digits_seeds):
        models = {
            "sklearn BernoulliRBM": BernoulliRBM(n_components=100, learning_rate=0.06, batch_size=10,
                                                 n_iter=10, random_state=seed),
            "BernoulliRBMStack": C.ours()["BernoulliRBMStack"](
                n_components=100, learning_rate=0.06, batch_size=10, max_iter=10, random_state=seed,
                device="cpu"),
        }
        for name, model in models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_s, _ = C.timed(lambda: model.fit(X_train), "cpu")
                clf = LogisticRegression(C=6000, max_iter=1000).fit(model.transform(X_train), y_train)
            accuracy = clf.score(model.transform(X_test), y_test)
            records.append(C.record(ctx, SUITE, case, name, "accuracy", accuracy, seed=seed))
            records.append(C.record(ctx, SUITE, case, name, "fit_seconds", fit_s, seed=seed,
                                    train_samples_per_s=len(X_train) * 10 / fit_s))
            rows.append([seed, name, f"{accuracy:.4f}", f"{fit_s:.2f}"])
            print(f"  seed {seed} {name:<22} accuracy {accuracy:.4f}, fit {fit_s:.2f}s", flush=True)
    for name in ("sklearn BernoulliRBM", "BernoulliRBMStack"):
        acc = [r["value"] for r in records if r["implementation"] == name and r["metric"] == "accuracy"]
        fit = [r["value"] for r in records if r["implementation"] == name and r["metric"] == "fit_seconds"]
        records.append(C.record(ctx, SUITE, case, name, "mean_accuracy", float(np.mean(acc)),
                                seeds=len(acc)))
        rows.append(["mean", name, f"{np.mean(acc):.4f}", f"{np.median(fit):.2f} (median)"])
    text = C.header_lines(ctx, "RBM features on nudged digits: BernoulliRBMStack vs BernoulliRBM",
                          command or "python benchmarks/bench_rbm_mnist.py --digits-only")
    text += run_digits.__doc__ + "\n\n" + C.md_table(["seed", "implementation", "accuracy", "fit s"], rows)
    path = C.write_results(records, "rbm_digits_cpu", text)
    print(f"wrote {path}")
    return records


def add_arguments(parser):
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch of CD-1 on 10,000 rows, AIS at 14,500 and 5,000 betas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default 50 (1 with --quick)")
    parser.add_argument("--gibbs-steps", type=int, default=None,
                        help="k of CD-k (default 25; 1 with --quick)")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--time-budget", type=float, default=None,
                        help="train one epoch at a time (partial_fit) and stop once training has "
                             "taken this many seconds (at most --epochs)")
    parser.add_argument("--name", default=None, help="results file name (default rbm_mnist_<device>[_quick])")
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--betas", type=int, nargs="+", default=[14500, 5000])
    parser.add_argument("--bound-rows", type=int, default=200,
                        help="test images for log_likelihood_bounds (0 skips the bounds)")
    parser.add_argument("--raise-betas", type=int, default=None,
                        help="RAISE schedule of the lower bound (default: the first of --betas)")
    parser.add_argument("--raise-runs", type=int, default=10)
    parser.add_argument("--autoencoders", action="store_true",
                        help="also run bench_ae_mnist.py with and without pretraining='rbm'")
    parser.add_argument("--ae-epochs", type=int, default=None)
    parser.add_argument("--digits-only", action="store_true",
                        help="only the RBM-features protocol on digits (CPU), against BernoulliRBM")
    parser.add_argument("--digits-seeds", type=int, default=3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_rows = args.train_rows or 10000
        args.gibbs_steps = args.gibbs_steps or 1
    args.gibbs_steps = args.gibbs_steps or 25
    if args.digits_only:
        return run_digits(args)
    return run(args)


if __name__ == "__main__":
    main()
