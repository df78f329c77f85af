"""What does training in bfloat16 cost in held-out log-likelihood?

The ``precision`` setting's user-guide figures come from here. For each data set, the default
``AutoencoderTransformer`` and ``VAETransformer`` are trained twice per seed, with
``precision="float32"`` and ``precision="bf16"`` (bfloat16 autocast of the forward passes), on
the same split and seed, and scored on held-out rows in float32 (``score``: mean log-likelihood in
nats per row). The difference bf16 - float32 is set beside the spread of float32 between seeds,
the noise a user sees anyway.

Data sets: standardized digits (the tests' split: a third held out, stratified), standardized iris
and diabetes (a third held out), and a synthetic set bfloat16's three significant digits should
strain: rank 2 in 8 features, noise 0.001, every feature offset by 10 and not standardized, also
with a VAE trained long enough to resolve that noise.

    PYTHONPATH=. python benchmarks/study_precision.py            # about 5 minutes on 2 cores
    PYTHONPATH=. python benchmarks/study_precision.py --quick
"""

import argparse
import sys
import warnings

import numpy as np

import _common as C

SUITE = "precision_study"


def datasets(quick):
    from sklearn.datasets import load_diabetes, load_digits, load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    def standardized(X, y=None, stratify=False):
        X_train, X_test = train_test_split(X, test_size=1 / 3, random_state=0, stratify=y if stratify else None)
        scaler = StandardScaler().fit(X_train)
        return scaler.transform(X_train).astype(np.float32), scaler.transform(X_test).astype(np.float32)

    X, y = load_digits(return_X_y=True)
    out = {"digits (standardized)": (*standardized(X, y, stratify=True), 8, 2 if quick else 5)}
    X, y = load_iris(return_X_y=True)
    out["iris (standardized)"] = (*standardized(X, y, stratify=True), 2, 2)
    X, _ = load_diabetes(return_X_y=True)
    out["diabetes (standardized)"] = (*standardized(X), 4, 2)
    rng = np.random.RandomState(0)
    Z = rng.randn(900, 2)
    X = (Z @ rng.randn(2, 8) + 0.001 * rng.randn(900, 8) + 10.0).astype(np.float32)
    out[SYNTHETIC] = (X[:600], X[600:], 2, 3)
    return out


SYNTHETIC = "rank 2 of 8, noise 0.001, offset 10 (raw)"


def models(found, n_components, data_name):
    out = {
        "AutoencoderTransformer": lambda **kw: found["AutoencoderTransformer"](n_components=n_components, **kw),
        "VAETransformer": lambda **kw: found["VAETransformer"](n_components=n_components, **kw),
    }
    if data_name == SYNTHETIC:  # trained long enough to resolve the small noise
        out["VAETransformer, hidden (64,), lr 3e-3, 800 epochs"] = lambda **kw: found["VAETransformer"](
            n_components=n_components, hidden_layer_sizes=(64,), learning_rate_init=3e-3, max_iter=800, tol=0.0,
            **kw)
    return out


def run(args):
    C.set_threads(1)
    ctx = C.context("cpu")
    found = C.ours()
    records, rows = [], []
    for data_name, (X_train, X_test, k, n_seeds) in datasets(args.quick).items():
        for model_name, make in models(found, k, data_name).items():
            scores = {"float32": [], "bf16": []}
            for seed in range(n_seeds):
                for precision in scores:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = make(random_state=seed, device="cpu", precision=precision).fit(X_train)
                    scores[precision].append(float(model.score(X_test)))
                    print(f"{data_name} {model_name} seed {seed} {precision}: {scores[precision][-1]:.4f} "
                          f"({model.n_iter_} epochs)", flush=True)
            diffs = np.subtract(scores["bf16"], scores["float32"])
            spread = float(np.ptp(scores["float32"]))
            case = f"{data_name}, k={k}"
            records.append(C.record(ctx, SUITE, case, model_name, "bf16_minus_float32_nats_mean",
                                    float(diffs.mean()), diffs=diffs.tolist(), float32=scores["float32"],
                                    bf16=scores["bf16"], float32_spread_between_seeds=spread, seeds=n_seeds))
            rows.append([case, model_name, n_seeds, f"{np.mean(scores['float32']):.3f}",
                         f"{np.mean(scores['bf16']):.3f}", f"{diffs.min():+.3f} .. {diffs.max():+.3f}",
                         f"{spread:.3f}"])
    text = C.header_lines(ctx, "Training in bfloat16: held-out log-likelihood against float32", " ".join(sys.argv))
    text += (__doc__.split("\n\n")[1] + "\n\n" + __doc__.split("\n\n")[2] + "\n\n")
    text += C.md_table(["data, code size", "estimator (defaults unless said)", "seeds", "float32 mean", "bf16 mean",
                        "bf16 - float32 per seed", "float32 spread between seeds"], rows)
    path = C.write_results(records, args.name, text)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--name", default="precision_study_cpu")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
