"""AutoencoderTransformer: behaviour a user relies on."""

import io
import pickle
import signal
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from sklearn_ae import AutoencoderTransformer, DivergenceError

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, device="cpu")


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


# --------------------------------------------------------------------------- results
def test_beats_pca_on_held_out_digits(digits_split):
    """The issue's bar: lower held-out MSE than PCA at 8 components, and codes that serve a
    downstream logistic regression no worse than PCA's (within one point). Default settings."""
    X_train, X_test, y_train, y_test = digits_split
    pca = PCA(n_components=8).fit(X_train)
    ae = AutoencoderTransformer(n_components=8, random_state=0, device="cpu").fit(X_train)

    def mse(est):
        return np.mean((est.inverse_transform(est.transform(X_test)) - X_test) ** 2)

    def acc(est):
        clf = LogisticRegression(max_iter=5000).fit(est.transform(X_train), y_train)
        return clf.score(est.transform(X_test), y_test)

    assert mse(ae) < mse(pca)
    assert acc(ae) >= acc(pca) - 0.01


def test_transform_shapes_and_inverse(X):
    ae = AutoencoderTransformer(n_components=3, **FAST).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (120, 3)
    assert ae.inverse_transform(Z).shape == X.shape
    np.testing.assert_allclose(ae.fit_transform(X), Z, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expecting 3 features"):
        ae.inverse_transform(np.zeros((2, 4)))


@pytest.mark.parametrize("noise_model", ["isotropic", "diagonal"])
def test_gaussian_score_is_the_gaussian_log_likelihood(X, noise_model):
    ae = AutoencoderTransformer(n_components=3, noise_model=noise_model, **FAST).fit(X)
    X_hat = ae.inverse_transform(ae.transform(X))
    var = ae.noise_variance_
    expected = -0.5 * (np.log(2 * np.pi * var) + (X - X_hat) ** 2 / var).sum(1)
    np.testing.assert_allclose(ae.score_samples(X), expected, rtol=1e-6)
    assert ae.score(X) == pytest.approx(expected.mean(), rel=1e-6)
    # maximum likelihood on the training residuals: one shared variance, or one per feature
    mean_sq = ((X - X_hat) ** 2).mean(0)
    mle = np.full_like(mean_sq, mean_sq.mean()) if noise_model == "isotropic" else mean_sq
    np.testing.assert_allclose(var, np.maximum(mle, ae._noise_floor), rtol=1e-4)


@pytest.mark.parametrize("noise_model", ["isotropic", "diagonal"])
def test_feature_constant_in_training_but_not_in_new_data(X, noise_model):
    """Was: the noise variance of a feature constant in the training data collapsed to the
    floor, so one new value of it cost about 1e5 nats."""
    X_train, X_test = X.copy(), X.copy()
    X_train[:, 2] = 0.0
    X_test[:, 2] = np.linspace(-2, 2, len(X_test))  # about the scale of the other features
    ae = AutoencoderTransformer(n_components=3, noise_model=noise_model, **FAST).fit(X_train)
    var = ae.noise_variance_
    others = np.delete(var, 2)
    assert var[2] == pytest.approx(others.mean(), rel=1e-6)  # the shared level
    train, test = ae.score_samples(X_train), ae.score_samples(X_test)
    assert np.all(np.isfinite(test))
    # the moved feature costs what a residual of its size costs at the shared level (a few
    # nats), not thousands of nats
    residual = X_test[:, 2] - ae.inverse_transform(ae.transform(X_test))[:, 2]
    term = -0.5 * (np.log(2 * np.pi * var[2]) + residual ** 2 / var[2])
    assert term.min() > -20
    assert np.mean(train) - np.mean(test) < 20


def test_noise_variance_has_a_floor_for_constant_features(X):
    X = X.copy()
    X[:, 2] = 3.0
    ae = AutoencoderTransformer(n_components=3, noise_model="diagonal", **FAST).fit(X)
    assert np.all(ae.noise_variance_ > 0)
    assert np.all(np.isfinite(ae.score_samples(X)))


def test_bernoulli_score_and_range_check(X01):
    ae = AutoencoderTransformer(n_components=3, likelihood="bernoulli", **FAST).fit(X01)
    assert ae.noise_variance_ is None
    P = ae.inverse_transform(ae.transform(X01))
    assert P.min() >= 0 and P.max() <= 1
    expected = (X01 * np.log(P) + (1 - X01) * np.log1p(-P)).sum(1)
    np.testing.assert_allclose(ae.score_samples(X01), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\].*-0\.5 to 0\.5.*MinMaxScaler"):
        ae.score_samples(X01 - 0.5)
    with pytest.raises(ValueError, match="MinMaxScaler"):
        clone(ae).fit(X01 * 2)


# ---------------------------------------------------------------------- conventions
def test_reproducible_and_no_global_rng(X):
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    seed = torch.initial_seed()
    a = AutoencoderTransformer(n_components=2, **FAST).fit(X).transform(X)
    b = AutoencoderTransformer(n_components=2, **FAST).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert torch.initial_seed() == seed
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    c = AutoencoderTransformer(n_components=2, **{**FAST, "random_state": 1}).fit(X).transform(X)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input(X, dtype):
    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X.astype(dtype))
    Xd = X.astype(dtype)
    assert ae.transform(Xd).dtype == dtype
    assert ae.inverse_transform(ae.transform(Xd)).dtype == dtype
    assert ae.score_samples(Xd).dtype == dtype


def test_pandas_output_and_feature_names(X):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    ae = AutoencoderTransformer(n_components=3, **FAST).set_output(transform="pandas").fit(df)
    out = ae.transform(df)
    assert list(out.columns) == ["autoencodertransformer0", "autoencodertransformer1",
                                 "autoencodertransformer2"]
    assert list(ae.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(ae.get_feature_names_out(), out.columns)


def test_pickle_roundtrip_and_clone(X):
    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X)
    blob = pickle.dumps(ae)
    ae2 = pickle.loads(blob)
    np.testing.assert_array_equal(ae.transform(X), ae2.transform(X))
    np.testing.assert_array_equal(ae.score_samples(X), ae2.score_samples(X))
    assert len(blob) < 200_000  # the training data and per-batch history are not pickled
    fresh = clone(ae)
    assert not hasattr(fresh, "net_")
    assert fresh.get_params() == ae.get_params()
    ae2.partial_fit(X)  # a loaded model keeps training
    assert ae2.n_iter_ == ae.n_iter_ + 1


def test_pipeline_grid_search_supervised(digits_split):
    X_train, _, y_train, _ = digits_split
    pipe = make_pipeline(AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=15,
                                                random_state=0, device="cpu"),
                         LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [2, 12]}, cv=2)
    search.fit(X_train[:400], y_train[:400])
    assert search.best_params_["autoencodertransformer__n_components"] == 12


def test_grid_search_unsupervised_through_score(digits_split):
    """GridSearchCV with no labels and the default scorer ranks candidates by the mean held-out
    score_samples, exactly as each estimator's own score computes it."""
    X_train = digits_split[0][:400]
    base = AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=15, random_state=0, device="cpu")
    search = GridSearchCV(base, {"n_components": [1, 12]}, cv=2).fit(X_train)
    for i, k in enumerate([1, 12]):
        folds = [clone(base).set_params(n_components=k).fit(X_train[train]).score(X_train[test])
                 for train, test in KFold(2).split(X_train)]
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(np.mean(folds), rel=1e-5)
    assert np.isfinite(search.best_score_)
    assert search.best_score_ == search.cv_results_["mean_test_score"].max()


# ----------------------------------------------------------------------------- training
def test_early_stopping_restores_best_weights(X):
    ae = AutoencoderTransformer(n_components=2, early_stopping=True, validation_fraction=0.25,
                                n_iter_no_change=3, hidden_layer_sizes=(64,),
                                learning_rate_init=0.05, max_iter=60, random_state=0,
                                device="cpu").fit(X)
    scores = ae.validation_scores_
    assert len(scores) == ae.n_iter_ == len(ae.loss_curve_)
    assert ae.best_validation_score_ == max(scores)
    assert ae.n_iter_ < 60
    # recompute the validation loss with the restored weights: it is the best epoch's
    order = np.random.RandomState(ae._split_seed).permutation(120)
    X_valid = X[np.sort(order[:30])].astype(np.float32)
    X_hat = ae.inverse_transform(ae.transform(X_valid))
    restored = -0.5 * ((X_valid - X_hat) ** 2).sum(1).mean()
    assert restored == pytest.approx(ae.best_validation_score_, rel=1e-4)
    assert ae.best_validation_score_ > scores[-1]


def test_convergence_like_mlp(X):
    ae = AutoencoderTransformer(n_components=2, tol=1e3, n_iter_no_change=2, **{**FAST, "max_iter": 50})
    ae.fit(X)
    # the first epoch improves on +inf; no later one improves by 1000, and MLPRegressor's rule
    # stops once more than n_iter_no_change epochs have gone by without progress
    assert ae.n_iter_ == 4
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(hidden_layer_sizes=(4,), tol=1e3, n_iter_no_change=2, max_iter=50,
                       random_state=0).fit(X, X)
    assert mlp.n_iter_ == ae.n_iter_
    with pytest.warns(ConvergenceWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            AutoencoderTransformer(n_components=2, tol=0.0, **{**FAST, "max_iter": 2}).fit(X)


def test_verbose_line(X, capsys):
    AutoencoderTransformer(n_components=2, verbose=2, **{**FAST, "max_iter": 3}).fit(X)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[AutoencoderTransformer\] Iteration 1, loss = \d+\.\d{4}, time = \d+\.\d{2}s",
                        lines[0])


def test_user_callbacks_are_called(X, epoch_counter):
    cb = epoch_counter()
    ae = AutoencoderTransformer(n_components=2, callbacks=[("count", cb)], **{**FAST, "max_iter": 4},
                                tol=0.0).fit(X)
    assert dict(ae.net_.callbacks_)["count"].epochs == 4


def test_partial_fit_and_warm_start(X):
    ae = AutoencoderTransformer(n_components=2, **FAST)
    assert ae.partial_fit(X) is ae
    assert ae.n_iter_ == 1
    ae.partial_fit(X[:50])
    assert ae.n_iter_ == 2
    warm = AutoencoderTransformer(n_components=2, warm_start=True, tol=0.0, **{**FAST, "max_iter": 3})
    warm.fit(X)
    first = warm.loss_curve_[-1]
    warm.fit(X)
    assert warm.n_iter_ == 6 and warm.loss_curve_[-1] < first


def test_divergence_is_a_clear_error_and_partial_fit_keeps_the_model(X):
    with pytest.raises(DivergenceError, match="Lower learning_rate_init"):
        AutoencoderTransformer(n_components=2, learning_rate_init=1e30, **FAST).fit(X * 1e20)
    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X)
    before = ae.transform(X)
    params = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    ae.set_params(learning_rate_init=1e30)
    with pytest.raises(DivergenceError):
        ae.partial_fit(X * 1e20)
    for k, v in ae.module_.state_dict().items():
        assert torch.equal(v, params[k])
    np.testing.assert_array_equal(ae.transform(X), before)
    assert ae.n_iter_ == len(ae.net_.history)


def test_keyboard_interrupt_keeps_weights(X):
    class Interrupt(Callback):  # what Ctrl-C does: a SIGINT to the process
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                signal.raise_signal(signal.SIGINT)

    with pytest.warns(UserWarning, match="interrupted .* after 2 complete epoch"):
        ae = AutoencoderTransformer(n_components=2, callbacks=[Interrupt()], tol=0.0, **FAST).fit(X)
    assert ae.n_iter_ == 2
    assert np.all(np.isfinite(ae.transform(X)))


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(X, bad):
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        AutoencoderTransformer(**FAST).fit(Xb)
    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X)
    with pytest.raises(ValueError, match="NaN|infinity"):
        ae.transform(Xb)


def test_wrong_feature_count_and_unfitted(X):
    ae = AutoencoderTransformer(n_components=2, **FAST)
    for method in (ae.transform, ae.score_samples, ae.inverse_transform):
        with pytest.raises(NotFittedError):
            method(X)
    ae.fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but AutoencoderTransformer is expecting 6"):
        ae.transform(X[:, :5])
    with pytest.raises(ValueError, match="0 sample"):
        ae.transform(X[:0])


def test_cuda_request_without_cuda_is_clear(X):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ae = AutoencoderTransformer(device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        ae.fit(X)
    assert ae.device == "cuda"  # the parameter is never rewritten


def test_bad_parameters_are_sklearn_errors(X):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        AutoencoderTransformer(activation="swish").fit(X)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        AutoencoderTransformer(hidden_layer_sizes=(4, 0), device="cpu").fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_matches_cpu_shapes_and_pickles(X):
    ae = AutoencoderTransformer(n_components=2, **{**FAST, "device": "cuda"}).fit(X)
    assert next(ae.module_.parameters()).is_cuda
    buf = io.BytesIO()
    pickle.dump(ae, buf)
    ae2 = pickle.loads(buf.getvalue())
    np.testing.assert_allclose(ae.transform(X), ae2.transform(X), rtol=1e-5, atol=1e-6)


def test_move_net_keeps_weights_and_optimizer_state(X):
    from sklearn_ae._engine import move_net

    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X)
    before = ae.transform(X)
    assert move_net(ae.net_, torch.device("cpu")) is ae.net_  # same device: nothing to do
    assert ae.net_.device == "cpu"
    np.testing.assert_array_equal(ae.transform(X), before)
    ae.partial_fit(X)
    assert ae.n_iter_ == 21


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_fitted_model_continues_training_on_cuda(X):
    ae = AutoencoderTransformer(n_components=2, **FAST).fit(X)
    ae.set_params(device="cuda")
    ae.partial_fit(X)
    assert next(ae.module_.parameters()).is_cuda
    assert all(v.is_cuda for state in ae.net_.optimizer_.state.values()
               for v in state.values() if torch.is_tensor(v))
    assert np.all(np.isfinite(ae.transform(X)))
