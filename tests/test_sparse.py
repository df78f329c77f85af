"""SparseAutoencoder: sparsity, its features, and the behaviour it shares with the base."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_ae import SparseAutoencoder
from sklearn_ae._likelihoods import kl_bernoulli
from sklearn_ae._modules import SparseReconstructionLoss

FAST = dict(n_components=12, max_iter=15, random_state=0, device="cpu")


@pytest.fixture
def X(rng):
    return rng.rand(120, 6)


def _quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


# --------------------------------------------------------------------------- the bar
def test_sparse_codes_and_features_on_digits(record_property):
    """Digits scaled to [0, 1], default settings trained to convergence: the mean activation sits
    near the target, the unpenalised model is far denser, and a standardized logistic regression
    on the 256 sparse features does at least as well on held-out digits as on the raw pixels."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=1 / 3, random_state=0, stratify=y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converged at the defaults
        sae = SparseAutoencoder(n_components=256, sparsity_target=0.05, random_state=0,
                                device="cpu").fit(X_train)
        dense = clone(sae).set_params(sparsity_weight=0.0).fit(X_train)
    sparse_mean = float(sae.mean_activation_.mean())
    dense_mean = float(dense.mean_activation_.mean())
    assert 0.03 <= sparse_mean <= 0.08
    assert dense_mean > 0.2 and dense_mean > 4 * sparse_mean

    def accuracy(train, test):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        return clf.fit(train, y_train).score(test, y_test)

    raw = accuracy(X_train, X_test)
    features = accuracy(sae.transform(X_train), sae.transform(X_test))
    for name, value in [("mean_activation_sparse", sparse_mean), ("mean_activation_dense", dense_mean),
                        ("accuracy_raw_pixels", raw), ("accuracy_sparse_features", features),
                        ("n_iter_sparse", sae.n_iter_)]:
        record_property(name, value)
    print(f"mean activation {sparse_mean:.4f} (sparsity_weight=0: {dense_mean:.4f}); held-out "
          f"accuracy on raw pixels {raw:.4f}, on 256 sparse features {features:.4f}; "
          f"{sae.n_iter_} epochs")
    assert features >= raw, (features, raw)


# ------------------------------------------------------------------------------- the model
def test_loss_is_reconstruction_plus_weighted_kl():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(7, 5, generator=gen)
    output = torch.randn(7, 5, generator=gen)
    code = torch.rand(7, 4, generator=gen)
    rho_hat = code.mean(0)
    kl = (0.05 * torch.log(0.05 / rho_hat) + 0.95 * torch.log(0.95 / (1 - rho_hat))).sum()
    assert torch.allclose(kl_bernoulli(0.05, rho_hat), kl)
    gaussian = 0.5 * ((x - output) ** 2).sum(1).mean()
    loss = SparseReconstructionLoss("gaussian", 0.05, 3.0)((output, code), x)
    assert torch.allclose(loss, gaussian + 3.0 * kl)
    bern = torch.nn.functional.binary_cross_entropy_with_logits(output, x, reduction="sum") / 7
    loss = SparseReconstructionLoss("bernoulli", 0.05, 3.0)((output, code), x)
    assert torch.allclose(loss, bern + 3.0 * kl)
    assert torch.allclose(SparseReconstructionLoss("gaussian", 0.05, 0.0)((output, code), x), gaussian)


def test_overcomplete_sigmoid_codes_and_mean_activation(X):
    sae = _quiet_fit(SparseAutoencoder(**FAST), X)  # 12 code units for 6 features
    Z = sae.transform(X)
    assert Z.shape == (120, 12)
    assert Z.min() > 0 and Z.max() < 1
    assert sae.inverse_transform(Z).shape == X.shape
    assert sae.mean_activation_.shape == (12,)
    np.testing.assert_allclose(sae.mean_activation_, Z.mean(0), rtol=1e-5)
    assert isinstance(sae.module_.encoder[-1], torch.nn.Sigmoid)


def test_penalty_pulls_activations_to_the_target(X):
    """The same seed and epochs: the penalised model's units sit nearer rho than the free ones."""
    common = dict(FAST, max_iter=300, learning_rate_init=0.02, tol=0.0)
    free = _quiet_fit(SparseAutoencoder(sparsity_weight=0.0, **common), X).mean_activation_
    for rho in (0.05, 0.2):
        sparse = _quiet_fit(SparseAutoencoder(sparsity_target=rho, **common), X).mean_activation_
        assert np.abs(sparse - rho).mean() < 0.1 * np.abs(free - rho).mean()
        assert abs(sparse.mean() - rho) < 0.01


def test_deeper_encoder(X):
    sae = _quiet_fit(SparseAutoencoder(hidden_layer_sizes=(8,), activation="relu", **FAST), X)
    linears = [m for m in sae.module_.encoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 8), (8, 12)]
    assert isinstance(sae.module_.encoder[-1], torch.nn.Sigmoid)
    Z = sae.transform(X)
    assert Z.shape == (120, 12) and Z.min() > 0 and Z.max() < 1


def test_partial_fit_mean_activation_covers_all_batches(X):
    sae = SparseAutoencoder(**FAST)
    sae.partial_fit(X[:70])
    first = sae.transform(X[:70]).astype(np.float64).sum(0)
    np.testing.assert_allclose(sae.mean_activation_, first / 70, rtol=1e-5)
    sae.partial_fit(X[70:])
    second = sae.transform(X[70:]).astype(np.float64).sum(0)
    np.testing.assert_allclose(sae.mean_activation_, (first + second) / 120, rtol=1e-5)
    assert sae.n_iter_ == 2
    _quiet_fit(sae, X[:40])  # a fresh fit starts the count again
    np.testing.assert_allclose(sae.mean_activation_, sae.transform(X[:40]).mean(0), rtol=1e-5)


# --------------------------------------------------------------- behaviour shared with the base
def test_gaussian_and_bernoulli_scores(X):
    sae = _quiet_fit(SparseAutoencoder(**FAST), X)
    X_hat = sae.inverse_transform(sae.transform(X))
    var = sae.noise_variance_
    expected = -0.5 * (np.log(2 * np.pi * var) + (X - X_hat) ** 2 / var).sum(1)
    np.testing.assert_allclose(sae.score_samples(X), expected, rtol=1e-5)
    assert sae.score(X) == pytest.approx(expected.mean(), rel=1e-5)

    X01 = (X > 0.5).astype(np.float64)
    bern = _quiet_fit(SparseAutoencoder(likelihood="bernoulli", **FAST), X01)
    assert bern.noise_variance_ is None
    P = bern.inverse_transform(bern.transform(X01))
    expected = (X01 * np.log(P) + (1 - X01) * np.log1p(-P)).sum(1)
    np.testing.assert_allclose(bern.score_samples(X01), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\].*MinMaxScaler"):
        bern.score_samples(X01 * 2)


def test_early_stopping(X):
    sae = SparseAutoencoder(early_stopping=True, n_iter_no_change=2, **{**FAST, "max_iter": 40})
    _quiet_fit(sae, X)
    assert len(sae.validation_scores_) == sae.n_iter_
    assert sae.best_validation_score_ == max(sae.validation_scores_)


def test_reproducible_pickle_clone_dtype(X):
    torch_state = torch.get_rng_state()
    a = _quiet_fit(SparseAutoencoder(**FAST), X)
    b = _quiet_fit(SparseAutoencoder(**FAST), X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert torch.equal(torch.get_rng_state(), torch_state)
    loaded = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(loaded.transform(X), a.transform(X))
    np.testing.assert_array_equal(loaded.mean_activation_, a.mean_activation_)
    fresh = clone(a)
    assert not hasattr(fresh, "mean_activation_") and fresh.get_params() == a.get_params()
    assert a.transform(X.astype(np.float32)).dtype == np.float32
    assert a.score_samples(X.astype(np.float32)).dtype == np.float32


def test_pandas_output_names(X):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    sae = SparseAutoencoder(**{**FAST, "n_components": 3, "max_iter": 2}).set_output(transform="pandas")
    out = _quiet_fit(sae, df).transform(df)
    assert list(out.columns) == ["sparseautoencoder0", "sparseautoencoder1", "sparseautoencoder2"]


@pytest.mark.parametrize("params", [{"sparsity_target": 0.0}, {"sparsity_target": 1.0},
                                    {"sparsity_weight": -1.0}])
def test_bad_sparsity_parameters(X, params):
    with pytest.raises(InvalidParameterError):
        SparseAutoencoder(**params).fit(X)


def test_cuda_request_without_cuda_is_clear(X):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        SparseAutoencoder(device="cuda").fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_and_pickle(X):
    sae = _quiet_fit(SparseAutoencoder(**{**FAST, "device": "cuda"}), X)
    assert next(sae.module_.parameters()).is_cuda
    loaded = pickle.loads(pickle.dumps(sae))
    np.testing.assert_allclose(loaded.transform(X), sae.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sae.mean_activation_, sae.transform(X).mean(0), rtol=1e-4)
