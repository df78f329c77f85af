"""Demonstration: ``python -m sklearn_ae``.

Fits PCA and this package's estimators at the same ``n_components`` on scikit-learn's bundled
digits (standardized, one third held out) and prints one table: held-out reconstruction error,
held-out log-likelihood, the accuracy of a logistic regression on the features, fit time, device.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_ae
from sklearn_ae._engine import resolve_device

N_COMPONENTS = 8


def candidates():
    """(name, estimator) pairs for the table on standardized data."""
    yield "PCA", PCA(n_components=N_COMPONENTS)
    yield "AutoencoderTransformer", sklearn_ae.AutoencoderTransformer(
        n_components=N_COMPONENTS, random_state=0)
    yield "VAETransformer", sklearn_ae.VAETransformer(n_components=N_COMPONENTS, random_state=0)


def evaluate(estimator, X_train, X_test, y_train, y_test):
    start = time.perf_counter()
    estimator.fit(X_train)
    fit_time = time.perf_counter() - start
    Z_train, Z_test = estimator.transform(X_train), estimator.transform(X_test)
    mse = float(np.mean((estimator.inverse_transform(Z_test) - X_test) ** 2))
    scores = estimator.score_samples(X_test)
    clf = LogisticRegression(max_iter=5000).fit(Z_train, y_train)
    return mse, float(np.mean(scores)), float(np.median(scores)), clf.score(Z_test, y_test), fit_time


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=1 / 3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    keep = VarianceThreshold().fit(X_train)  # constant pixels make every density degenerate
    X_train, X_test = keep.transform(X_train), keep.transform(X_test)
    device = str(resolve_device("auto"))
    print(f"sklearn_ae {sklearn_ae.__version__}: digits, standardized, constant pixels dropped, "
          f"{len(X_train)} train / "
          f"{len(X_test)} held out, n_components={N_COMPONENTS}\n")
    header = (f"{'estimator':<24}{'held-out MSE':>13}{'mean log-lik':>14}{'median log-lik':>16}"
              f"{'LogReg acc':>12}{'fit (s)':>9}  device")
    print(header)
    print("-" * len(header))
    for name, estimator in candidates():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mse, mean_ll, median_ll, acc, fit_time = evaluate(
                estimator, X_train, X_test, y_train, y_test)
        where = "cpu" if name == "PCA" else device
        print(f"{name:<24}{mse:>13.4f}{mean_ll:>14.2f}{median_ll:>16.2f}{acc:>12.3f}"
              f"{fit_time:>9.2f}  {where}")
    print("\nlog-likelihoods are in nats per image. PCA's and the VAE's are densities over the "
          "data space\n(the VAE's an importance-weighted estimate of log p(x)), so those two compare "
          "directly;\nthe deterministic autoencoder scores a reconstruction likelihood (x given its "
          "own code),\nso compare it with the others with care.")
    sparse_features()
    rbm_features()


def sparse_features():
    """Sparse overcomplete features help a linear classifier (digits scaled to [0, 1])."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=1 / 3, random_state=0, stratify=y)
    start = time.perf_counter()
    sae = sklearn_ae.SparseAutoencoder(n_components=256, sparsity_target=0.05,
                                       random_state=0).fit(X_train)
    fit_time = time.perf_counter() - start

    def accuracy(train, test):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        return clf.fit(train, y_train).score(test, y_test)

    raw = accuracy(X_train, X_test)
    sparse = accuracy(sae.transform(X_train), sae.transform(X_test))
    print(f"\nSparseAutoencoder(n_components=256, sparsity_target=0.05) on digits scaled to [0, 1]: "
          f"mean code activation {sae.mean_activation_.mean():.3f}, {sae.n_iter_} epochs, "
          f"fit {fit_time:.1f}s on {resolve_device('auto')}\nstandardized LogisticRegression, "
          f"held-out accuracy: raw pixels {raw:.3f}, 256 sparse features {sparse:.3f}")



def rbm_features():
    """A single RBM as a feature extractor, next to scikit-learn's BernoulliRBM (digits / 16)."""
    from sklearn.neural_network import BernoulliRBM

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.2, random_state=0, stratify=y)
    settings = dict(n_components=100, learning_rate=0.06, batch_size=10, random_state=0)
    rows = []
    for name, rbm in [("BernoulliRBMStack", sklearn_ae.BernoulliRBMStack(max_iter=10, **settings)),
                      ("sklearn BernoulliRBM", BernoulliRBM(n_iter=10, **settings))]:
        start = time.perf_counter()
        rbm.fit(X_train)
        fit_time = time.perf_counter() - start
        clf = LogisticRegression(C=6000, max_iter=5000).fit(rbm.transform(X_train), y_train)
        rows.append((name, clf.score(rbm.transform(X_test), y_test), fit_time))
    print("\nRBM features (100 hidden units, 10 epochs, batch 10), LogisticRegression(C=6000), "
          "held-out accuracy:")
    for name, acc, fit_time in rows:
        print(f"  {name:<22} accuracy {acc:.3f}, fit {fit_time:.1f}s")


if __name__ == "__main__":
    main()
