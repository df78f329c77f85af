"""VAETransformer: the density it estimates, and behaviour a user relies on."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.feature_selection import VarianceThreshold
from sklearn.pipeline import make_pipeline

from sklearn_ae import DivergenceError, VAETransformer

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, n_importance_samples=50, random_state=0,
            device="cpu")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture
def X(rng):
    return rng.randn(120, 6)


@pytest.fixture
def X01(rng):
    return (rng.rand(120, 6) > 0.5).astype(np.float64)


def curve_data(rng, n=300):
    """Points near a 1-d curve in 4-d, with noise: a latent space of one dimension fits."""
    t = rng.randn(n, 1)
    return np.hstack([np.sin(t), np.cos(2 * t), t, 0.5 * t**2]) + 0.3 * rng.randn(n, 4)


def binary_curve_data(rng, n=300):
    t = rng.randn(n, 1)
    logits = 3.0 * t * np.array([[1.0, -1.0, 0.5, -0.5, 2.0, 0.0]]) + np.array([[0, 0, 1, -1, 0, 2]])
    return (rng.rand(n, 6) < 1 / (1 + np.exp(-logits))).astype(np.float64)


def quadrature_log_likelihood(vae, X):
    """log of the integral of p(x | z) p(z) dz over a fine grid of the 1-d latent space, from
    the decoder means (inverse_transform) and, for the Gaussian decoder, noise_variance_."""
    z = np.linspace(-10, 10, 8001)
    dz = z[1] - z[0]
    means = vae.inverse_transform(z[:, None])  # (grid, n_features)
    if vae.likelihood == "gaussian":
        var = vae.noise_variance_
        log_px = -0.5 * (np.log(2 * np.pi * var)[None, None]
                         + (X[:, None, :] - means[None]) ** 2 / var[None, None]).sum(-1)
    else:
        p = np.clip(means, 1e-300, 1)
        q = np.clip(1 - means, 1e-300, 1)
        log_px = X @ np.log(p).T + (1 - X) @ np.log(q).T  # (n, grid)
    log_pz = -0.5 * (np.log(2 * np.pi) + z**2)
    return logsumexp(log_px + log_pz[None] + np.log(dz), axis=1)


# --------------------------------------------------------------------------- the density
@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_iwae_agrees_with_quadrature_in_one_dimension(rng, likelihood):
    """With a 1-d latent space log p(x) = log ∫ p(x|z) p(z) dz can be computed by quadrature;
    the importance-weighted estimate with large K must agree within 0.05 nats."""
    X = curve_data(rng) if likelihood == "gaussian" else binary_curve_data(rng)
    vae = VAETransformer(n_components=1, hidden_layer_sizes=(32,), likelihood=likelihood,
                         max_iter=60, learning_rate_init=3e-3, n_importance_samples=5000,
                         random_state=0, device="cpu").fit(X)
    X_eval = X[:40]
    exact = quadrature_log_likelihood(vae, X_eval)
    iwae = vae.score_samples(X_eval)
    assert np.all(np.isfinite(exact))
    np.testing.assert_allclose(iwae, exact, atol=0.05)
    # the ELBO lies below the exact value (on average: its expectation is a Monte Carlo one)
    assert vae.set_params(n_importance_samples=500).elbo(X_eval).mean() < exact.mean()


def test_iwae_is_above_the_elbo_and_rises_with_k(rng):
    X = curve_data(rng, 500)
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(32,), max_iter=10,
                         learning_rate_init=3e-3, random_state=0, device="cpu").fit(X)
    means = []
    for k in (1, 10, 300):
        vae.set_params(n_importance_samples=k)
        means.append(vae.score(X))
    assert means[0] < means[1] < means[2], means
    elbo = vae.elbo(X).mean()  # a Monte Carlo average over the same 300 draws
    assert elbo < means[2]
    # the ELBO and the K = 1 bound estimate the same quantity
    assert elbo == pytest.approx(means[0], abs=0.05)


def test_score_is_deterministic_and_row_wise(X):
    vae = VAETransformer(n_components=2, **FAST).fit(X)
    s = vae.score_samples(X)
    np.testing.assert_array_equal(s, vae.score_samples(X))
    np.testing.assert_allclose(vae.score_samples(X[::-1])[::-1], s, rtol=1e-6)
    np.testing.assert_allclose(vae.score_samples(X[:7]), s[:7], rtol=1e-6)
    assert vae.score(X) == pytest.approx(s.mean(), rel=1e-6)
    # a differently seeded model draws other noise
    other = VAETransformer(n_components=2, **{**FAST, "random_state": 1}).fit(X)
    assert not np.allclose(other.score_samples(X), s)


def test_iwae_chunking_does_not_change_scores(X, monkeypatch):
    from sklearn_ae import _vae

    vae = VAETransformer(n_components=2, **{**FAST, "n_importance_samples": 200}).fit(X)
    whole = vae.score_samples(X)
    elbo = vae.elbo(X)
    monkeypatch.setattr(_vae, "IWAE_CHUNK_ELEMENTS", 64)  # one or a few samples per chunk
    np.testing.assert_allclose(vae.score_samples(X), whole, rtol=1e-5)
    np.testing.assert_allclose(vae.elbo(X), elbo, rtol=1e-5)


def test_beats_factor_analysis_and_pca_on_held_out_digits(digits_split):
    """The issue's bar: on standardized digits (constant pixels dropped), the default VAE's
    held-out log-likelihood beats FactorAnalysis and PCA at 8 components by over 5 nats."""
    X_train, X_test, _, _ = digits_split
    keep = VarianceThreshold().fit(X_train)
    X_train, X_test = keep.transform(X_train), keep.transform(X_test)
    vae = VAETransformer(n_components=8, random_state=0, device="cpu").fit(X_train)
    scores = {
        "VAETransformer": vae.score(X_test),
        "FactorAnalysis": FactorAnalysis(n_components=8).fit(X_train).score(X_test),
        "PCA": PCA(n_components=8).fit(X_train).score(X_test),
    }
    print("held-out log-likelihood, nats per image:", scores)
    assert scores["VAETransformer"] > scores["FactorAnalysis"] + 5
    assert scores["VAETransformer"] > scores["PCA"] + 5
    # a real gap between the bounds here: the ELBO, then IWAE rising with K
    bounds = []
    for k in (1, 10, 100):
        bounds.append(vae.set_params(n_importance_samples=k).score(X_test))
    bounds.append(scores["VAETransformer"])  # K = 500, the default
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3], bounds
    elbo = vae.elbo(X_test).mean()  # with K = 100 draws
    assert elbo == pytest.approx(bounds[0], abs=0.5) and elbo < bounds[1]


# --------------------------------------------------------------------------- the estimator
def test_transform_inverse_transform_and_sample(X):
    vae = VAETransformer(n_components=3, **FAST).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (120, 3)
    np.testing.assert_array_equal(Z, vae.transform(X))  # the posterior mean: deterministic
    np.testing.assert_allclose(vae.fit_transform(X), Z, rtol=1e-6, atol=1e-6)
    assert vae.inverse_transform(Z).shape == X.shape
    with pytest.raises(ValueError, match="expecting 3 features"):
        vae.inverse_transform(np.zeros((2, 4)))
    S = vae.sample(500, random_state=0)
    assert S.shape == (500, 6)
    np.testing.assert_array_equal(S, vae.sample(500, random_state=0))
    assert not np.array_equal(S, vae.sample(500, random_state=1))
    # samples spread like the model's marginal: about the data's scale, not the decoder mean's
    assert 0.3 < S.std() / X.std() < 3
    with pytest.raises(ValueError, match="n_samples"):
        vae.sample(0)


def test_noise_variance_is_learned_and_floored(X):
    X = X.copy()
    X[:, 2] = 3.0
    X[:, 4] *= 10
    vae = VAETransformer(n_components=2, **{**FAST, "max_iter": 60}).fit(X)
    var = vae.noise_variance_
    assert var.shape == (6,)
    np.testing.assert_allclose(var, vae.module_.noise_variance().detach().double().numpy())
    floor = vae.module_.variance_floor.numpy()
    assert np.all(var >= floor) and np.all(floor > 0)
    assert var[4] > 10 * var[0]  # the scaled-up feature keeps a larger variance
    assert np.all(np.isfinite(vae.score_samples(X)))


def test_feature_constant_in_training_but_not_in_new_data(X, tmp_path):
    """Was: the learned variance of a feature constant in the training data sat at the floor,
    so one new value of it cost about 1e3 nats per row; it now takes the shared level."""
    X_train, X_test = X.copy(), X.copy()
    X_train[:, 2] = 0.0
    X_test[:, 2] = np.linspace(-2, 2, len(X_test))
    vae = VAETransformer(n_components=2, **FAST).fit(X_train)
    var = vae.noise_variance_
    assert var[2] == pytest.approx(np.delete(var, 2).mean(), rel=1e-4)
    test = vae.score_samples(X_test)
    assert np.all(np.isfinite(test))
    assert np.mean(vae.score_samples(X_train)) - np.mean(test) < 20
    other = VAETransformer(n_components=2, **FAST).fit(X_test)
    # the variance is module state: save_params / load_params carries it
    vae.net_.save_params(f_params=tmp_path / "vae.pt")
    other.net_.load_params(f_params=tmp_path / "vae.pt")
    np.testing.assert_allclose(other.noise_variance_, var, rtol=1e-6)
    np.testing.assert_allclose(other.score_samples(X_test), test, rtol=1e-5)


def test_partial_fit_learns_the_variance_of_a_feature_that_starts_varying(X):
    """A feature constant in the first partial_fit calls and varying in the next ones continues
    from the shared level, not from the floor its learned variance sank to."""
    first, second = X.copy(), X.copy()
    first[:, 2] = 0.0
    vae = VAETransformer(n_components=2, **{**FAST, "max_iter": 1})
    for _ in range(20):
        vae.partial_fit(first)
    for _ in range(20):
        vae.partial_fit(second)
    var = vae.noise_variance_
    assert var[2] > 0.1 * np.delete(var, 2).mean()
    assert np.mean(vae.score_samples(second)) > np.mean(VAETransformer(n_components=2, **FAST).fit(first)
                                                        .score_samples(second))


def test_bernoulli_decoder_and_range_check(X01):
    vae = VAETransformer(n_components=2, likelihood="bernoulli", **FAST).fit(X01)
    assert vae.noise_variance_ is None
    P = vae.inverse_transform(vae.transform(X01))
    assert P.min() >= 0 and P.max() <= 1
    S = vae.sample(50, random_state=0)
    assert set(np.unique(S)) <= {0.0, 1.0}
    s = vae.score_samples(X01)
    assert np.all(s < 0) and np.all(s > 6 * np.log(1e-4))
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\].*-0\.5 to 0\.5.*MinMaxScaler"):
        vae.score_samples(X01 - 0.5)
    with pytest.raises(ValueError, match="MinMaxScaler"):
        clone(vae).fit(X01 * 2)


def test_beta_trades_kl_for_reconstruction(X):
    def kl(vae):
        with torch.no_grad():
            _, kl = vae.module_.eval()(torch.as_tensor(X, dtype=torch.float32))
        return float(kl.mean())

    low = VAETransformer(n_components=3, beta=0.1, **{**FAST, "max_iter": 40}).fit(X)
    high = VAETransformer(n_components=3, beta=5.0, **{**FAST, "max_iter": 40}).fit(X)
    assert kl(high) < kl(low)


def test_reproducible_and_no_global_rng(X):
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    a = VAETransformer(n_components=2, **FAST).fit(X)
    b = VAETransformer(n_components=2, **FAST).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    a.sample(3, random_state=0)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input(X, dtype):
    Xd = X.astype(dtype)
    vae = VAETransformer(n_components=2, **FAST).fit(Xd)
    assert vae.transform(Xd).dtype == dtype
    assert vae.inverse_transform(vae.transform(Xd)).dtype == dtype
    assert vae.score_samples(Xd).dtype == dtype
    assert vae.elbo(Xd).dtype == dtype


def test_pickle_keeps_scores_and_the_training_noise(X):
    vae = VAETransformer(n_components=2, **FAST).fit(X)
    vae2 = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(vae.transform(X), vae2.transform(X))
    np.testing.assert_array_equal(vae.score_samples(X), vae2.score_samples(X))
    # the reparameterisation noise continues where it was: one more epoch gives the same model
    vae.partial_fit(X)
    vae2.partial_fit(X)
    assert vae2.n_iter_ == vae.n_iter_ == FAST["max_iter"] + 1
    np.testing.assert_array_equal(vae.transform(X), vae2.transform(X))
    fresh = clone(vae)
    assert not hasattr(fresh, "net_") and fresh.get_params() == vae.get_params()


def test_partial_fit_warm_start_and_early_stopping(X):
    vae = VAETransformer(n_components=2, **FAST)
    assert vae.partial_fit(X) is vae and vae.n_iter_ == 1
    vae.partial_fit(X[:50])
    assert vae.n_iter_ == 2
    warm = VAETransformer(n_components=2, warm_start=True, tol=0.0, **{**FAST, "max_iter": 3})
    warm.fit(X).fit(X)
    assert warm.n_iter_ == 6
    es = VAETransformer(n_components=2, early_stopping=True, validation_fraction=0.25,
                        n_iter_no_change=3, **{**FAST, "max_iter": 200}).fit(X)
    assert es.best_validation_score_ == max(es.validation_scores_)
    assert len(es.validation_scores_) == es.n_iter_ < 200
    # the validation score is the beta-ELBO under fixed noise: the restored model reproduces it
    order = np.random.RandomState(es._split_seed).permutation(120)
    X_valid = torch.as_tensor(X[np.sort(order[:30])], dtype=torch.float32)
    with torch.no_grad():
        log_px, kl = es.module_.eval()(X_valid)
    assert float((log_px - kl).mean()) == pytest.approx(es.best_validation_score_, rel=1e-5)


def test_divergence_is_clear_and_partial_fit_keeps_the_model(X):
    with pytest.raises(DivergenceError, match="Lower learning_rate_init"):
        VAETransformer(n_components=2, learning_rate_init=1e30, **FAST).fit(X * 1e20)
    vae = VAETransformer(n_components=2, **FAST).fit(X)
    twin = pickle.loads(pickle.dumps(vae))
    before = vae.score_samples(X)
    vae.set_params(learning_rate_init=1e30)
    with pytest.raises(DivergenceError):
        vae.partial_fit(X * 1e20)
    np.testing.assert_array_equal(vae.score_samples(X), before)
    # weights, optimizer and training noise are as they were: the next epoch matches a twin's
    vae.set_params(learning_rate_init=FAST.get("learning_rate_init", 1e-3))
    np.testing.assert_array_equal(vae.partial_fit(X).transform(X), twin.partial_fit(X).transform(X))


def test_bad_input_and_unfitted(X):
    vae = VAETransformer(n_components=2, **FAST)
    for method in (vae.transform, vae.score_samples, vae.inverse_transform, vae.elbo):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        vae.sample()
    Xb = X.copy()
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vae.fit(Xb)
    vae.fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but VAETransformer is expecting 6"):
        vae.score_samples(X[:, :5])
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        VAETransformer(beta=-1.0).fit(X)
    with pytest.raises(InvalidParameterError):
        VAETransformer(n_importance_samples=0).fit(X)


def test_in_a_pipeline_with_pca(X):
    pipe = make_pipeline(PCA(n_components=5), VAETransformer(n_components=2, **FAST)).fit(X)
    assert pipe.transform(X).shape == (120, 2)
    assert np.isfinite(pipe.score(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_scores_like_cpu_and_pickles(X):
    vae = VAETransformer(n_components=2, **{**FAST, "device": "cuda"}).fit(X)
    assert next(vae.module_.parameters()).is_cuda
    vae2 = pickle.loads(pickle.dumps(vae))
    np.testing.assert_allclose(vae.score_samples(X), vae2.score_samples(X), rtol=1e-5)
    vae2.partial_fit(X)  # the CUDA noise generator comes back after unpickling
