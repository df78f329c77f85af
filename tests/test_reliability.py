"""Reliability: every public estimator against the inputs and accidents of real use.

Bad input of every kind on every public method, divergence, Ctrl-C, pickles that cross from a
GPU machine to a CPU-only one, determinism and untouched global random state, and memory
bounds. Each case either works (and gives the same answer as clean input) or fails with a
``ValueError`` / ``TypeError`` that says what to do; never a raw torch error or a silent NaN.

The matrix is parametrized over the estimators in ``sklearn_ae.__all__``, so estimators are
covered as they are added. ``make`` builds a small, fast, seeded instance of any of them.
"""

import copy
import gc
import inspect
import io
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from skorch import NeuralNet
from skorch.callbacks import Callback

import sklearn_ae
from sklearn_ae import AutoencoderTransformer, DivergenceError

# ----------------------------------------------------------------------------- factories
#: settings that make any of our estimators small and fast; each is used where the class has it
FAST = dict(n_components=2, hidden_layer_sizes=(4,), max_iter=3, device="cpu", random_state=0,
            n_importance_samples=4, n_ais_runs=4, n_ais_betas=20, n_gibbs_steps=1)
#: estimators whose model is defined on [0, 1] only, whatever their parameters
BERNOULLI_ONLY = {"BernoulliRBMStack"}
#: a learning rate that makes the training loss non-finite within a few epochs (plain SGD on
#: an RBM's free energy stays finite at 1e30; Adam's bias correction overflows at 1e38)
DIVERGENT_LEARNING_RATE = {"BernoulliRBMStack": 1e38}
#: methods that take an X of shape (n_samples, n_features_in_)
FIT_METHODS = ["fit", "partial_fit", "fit_transform", "fit_predict"]
INFERENCE_METHODS = ["transform", "score_samples", "score", "predict", "decision_function",
                     "pseudo_likelihood"]


def _estimator_classes():
    classes = []
    for name in sklearn_ae.__all__:
        obj = getattr(sklearn_ae, name)
        if isinstance(obj, type) and issubclass(obj, BaseEstimator):
            classes.append(obj)
    return classes


def _params(cls):
    return inspect.signature(cls.__init__).parameters


def is_meta(cls):
    return "estimator" in _params(cls)


def make(cls, **overrides):
    """A small seeded instance of ``cls``. A meta-estimator wraps a small autoencoder, and
    overrides it does not take go to the wrapped estimator."""
    params = _params(cls)
    if is_meta(cls):
        outer = {k: v for k, v in overrides.items() if k in params}
        inner = {k: v for k, v in overrides.items() if k not in params}
        return cls(estimator=make(AutoencoderTransformer, **inner), **outer)
    kwargs = {k: v for k, v in FAST.items() if k in params}
    kwargs.update(overrides)
    return cls(**kwargs)


def variants():
    """(id, class, overrides): each class, plus its Bernoulli variant where it has one."""
    out = []
    for cls in _estimator_classes():
        out.append(pytest.param(cls, {}, id=cls.__name__))
        if "likelihood" in _params(cls):
            out.append(pytest.param(cls, {"likelihood": "bernoulli"}, id=f"{cls.__name__}-bernoulli"))
    return out


VARIANTS = variants()

_VAE_NOISE = ("VAETransformer's training-noise generator is not part of the state that a "
              "diverged partial_fit restores, so the next call draws different noise; suggested "
              "fix: GaussianVAE.get_extra_state / set_extra_state")
_VAE_SIGNED_ZERO = ("VAETransformer.score_samples keys its importance-sampling noise on the bit "
                    "pattern of each row, so -0.0 and 0.0 score differently; suggested fix in "
                    "_vae.row_keys: hash (x.to(torch.float32) + 0.0)")

_RBM_PENDING_STATE = ("after unpickling, the Gibbs generator's state waits in "
                      "RBM._generator_state; a diverged partial_fit restores the generator to "
                      "None and drops that pending state, so the chain is re-seeded; suggested "
                      "fix in BernoulliRBMStack._module_state / _restore_module")

#: (test, variant id) -> why it fails today: marked xfail(strict=True) and reported
KNOWN_FAILURES = {
}


def cases(test):
    """VARIANTS, with the known failures of ``test`` marked xfail(strict=True)."""
    out = []
    for p in VARIANTS:
        reason = KNOWN_FAILURES.get((test, p.id))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(*p.values, id=p.id, marks=marks))
    return out


def needs_unit_interval(est):
    inner = getattr(est, "estimator", None)
    if isinstance(inner, BaseEstimator) and hasattr(est, "contamination"):
        return needs_unit_interval(inner)
    return type(est).__name__ in BERNOULLI_ONLY or est.get_params().get("likelihood") == "bernoulli"


def set_inner(est, **params):
    """``set_params`` that routes parameters a meta-estimator lacks to the estimator it wraps."""
    own = est.get_params(deep=False)
    return est.set_params(**{k if k in own else f"estimator__{k}": v for k, v in params.items()})


def has_param(est, name):
    return any(k == name or k.endswith(f"__{name}") for k in est.get_params())


def core(est):
    """The estimator that holds the fitted network (the wrapped one, for a meta-estimator)."""
    return getattr(est, "estimator_", est)


def learning_rate_param(est):
    return "learning_rate" if has_param(est, "learning_rate") else "learning_rate_init"


def divergent_learning_rate(est):
    return DIVERGENT_LEARNING_RATE.get(type(core(est)).__name__, 1e30)


def data(est, n_samples=40, n_features=5, seed=0):
    """Data the estimator's model is defined on: standard normal, or 0/1 for Bernoulli models."""
    rng = np.random.RandomState(seed)
    if needs_unit_interval(est):
        return (rng.rand(n_samples, n_features) > 0.5).astype(np.float64)
    return rng.randn(n_samples, n_features)


def methods(est, names):
    return [m for m in names if hasattr(est, m)]


def call(est, method, X):
    return getattr(est, method)(X)


def accepts_sparse(est):
    return est.__sklearn_tags__().input_tags.sparse


def iter_nets(obj, depth=0):
    """Every skorch net held by an estimator (or estimators it holds), however nested."""
    if depth > 4:
        return
    if isinstance(obj, NeuralNet):
        yield obj
        return
    if isinstance(obj, BaseEstimator):
        children = [v for k, v in vars(obj).items() if k.endswith("_") or k.startswith("_")]
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = obj.values()
    else:
        return
    for child in children:
        yield from iter_nets(child, depth + 1)


def state_tensors(est):
    """All module parameters, buffers and optimizer state of the estimator's nets, in order."""
    out = []
    for net in iter_nets(est):
        out += [t.detach().clone() for t in net.module_.state_dict().values() if torch.is_tensor(t)]
        for group in net.optimizer_.state_dict()["state"].values():
            out += [v.clone() for v in group.values() if torch.is_tensor(v)]
    return out


def outputs(est, X):
    """Every inference output for X, by method name."""
    res = {m: np.asarray(call(est, m, X)) for m in methods(est, INFERENCE_METHODS)}
    if hasattr(est, "inverse_transform") and "transform" in res:
        res["inverse_transform"] = est.inverse_transform(res["transform"])
    return res


def assert_outputs_equal(a, b, rtol=0.0, atol=0.0):
    assert a.keys() == b.keys()
    for name in a:
        if rtol == 0 and atol == 0:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


def assert_no_nan(res):
    for name, value in res.items():
        value = np.asarray(value, dtype=np.float64)
        assert not np.isnan(value).any(), f"{name} returned NaN"
        if name in ("transform", "inverse_transform"):
            assert np.isfinite(value).all(), f"{name} returned a non-finite value"


def assert_clean_error(exc):
    """A ValueError / TypeError raised by scikit-learn, NumPy or us: not from inside torch."""
    assert isinstance(exc, (ValueError, TypeError)), f"{type(exc).__name__}: {exc}"
    assert len(str(exc)) >= 15, f"unhelpful message: {exc!r}"
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename.replace(os.sep, "/")
    assert "/torch/" not in where and "/skorch/" not in where, f"raw error from {where}: {exc}"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


_FITTED = {}


def fitted(cls, overrides):
    """A fitted instance per variant, built once: tests must not modify it (copy it first)."""
    key = (cls.__name__, tuple(sorted(overrides.items())))
    if key not in _FITTED:
        est = make(cls, **overrides)
        _FITTED[key] = (est.fit(data(est)), data(est, n_samples=12, seed=1))
    return _FITTED[key]


# ------------------------------------------------------------------------ bad input matrix
def _set(X, value):
    X = X.astype(np.float64).copy()
    X[3 % len(X), 1] = value
    return X


#: name -> (make the bad input from good X, expected exception, message pattern)
BAD_INPUTS = {
    "nan": (lambda X: _set(X, np.nan), ValueError, "NaN"),
    "+inf": (lambda X: _set(X, np.inf), ValueError, "infinity"),
    "-inf": (lambda X: _set(X, -np.inf), ValueError, "infinity"),
    "no-samples": (lambda X: X[:0], ValueError, "0 sample"),
    "no-features": (lambda X: X[:, :0], ValueError, "0 feature"),
    "complex": (lambda X: X.astype(np.complex128), ValueError, "[Cc]omplex"),
    "words": (lambda X: np.full(X.shape, "abc", dtype=object), ValueError, "could not convert"),
    "object-with-None": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 1, None, X)
                         .astype(object), ValueError, "NaN"),
    "ragged-list": (lambda X: [list(X[0]), list(X[1][:-1])], ValueError, "inhomogeneous|sequence"),
    "1d": (lambda X: X[0], ValueError, "Expected 2D array"),
    "3d": (lambda X: X[None], ValueError, "dim 3"),
    "scalar": (lambda X: 1.0, ValueError, "Expected 2D array"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_bad_input_every_method(cls, overrides, case):
    """Each bad input, each public method: scikit-learn's error, and a fitted model unchanged."""
    est, X = fitted(cls, overrides)
    bad, error, pattern = BAD_INPUTS[case]
    before = outputs(est, X)
    for method in methods(est, FIT_METHODS):
        with pytest.raises(error, match=pattern) as info:
            call(clone(est), method, bad(X))
        assert_clean_error(info.value)
    for method in methods(est, INFERENCE_METHODS + ["partial_fit"]):
        with pytest.raises(error, match=pattern) as info:
            call(est, method, bad(X))
        assert_clean_error(info.value)
    if hasattr(est, "inverse_transform"):
        Z = est.transform(X)
        with pytest.raises(error, match=pattern) as info:
            est.inverse_transform(bad(Z))
        assert_clean_error(info.value)
    assert_outputs_equal(outputs(est, X), before)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_sparse_input(cls, overrides):
    """Sparse input gives the dense answer where accepted, and scikit-learn's TypeError where not."""
    est, X = fitted(cls, overrides)
    kinds = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array]
    if not accepts_sparse(est):
        for kind in kinds:
            for method in methods(est, INFERENCE_METHODS + ["partial_fit"]):
                with pytest.raises(TypeError, match="dense data is required") as info:
                    call(est, method, kind(X))
                assert_clean_error(info.value)
            with pytest.raises(TypeError, match="dense data is required"):
                clone(est).fit(kind(X))
        return
    dense = outputs(est, X)
    for kind in kinds:
        assert_outputs_equal(outputs(est, kind(X)), dense, rtol=1e-6, atol=1e-7)
    Xfit = data(est)
    a = outputs(clone(est).fit(Xfit), X)
    b = outputs(clone(est).fit(sp.csr_matrix(Xfit)), X)
    assert_outputs_equal(a, b, rtol=1e-6, atol=1e-7)
    bad = sp.csr_matrix(X)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)


def _readonly(X):
    X = X.copy()
    X.flags.writeable = False
    return X


#: name -> an equivalent form of the same data (same values, different container / layout)
EQUIVALENT_INPUTS = {
    "fortran-order": np.asfortranarray,
    "strided-view": lambda X: np.repeat(X, 2, axis=0)[::2],
    "transposed-twice": lambda X: np.ascontiguousarray(X.T).T,
    "read-only": _readonly,
    "list-of-lists": lambda X: X.tolist(),
    "object-dtype": lambda X: X.astype(object),
    "integer": lambda X: X.astype(np.int64),
    "int8": lambda X: X.astype(np.int8),
    "bool": lambda X: X.astype(bool),
    "float16": lambda X: X.astype(np.float16),
    "numeric-strings": lambda X: X.astype(str),
}


@pytest.mark.parametrize("case", list(EQUIVALENT_INPUTS))
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_equivalent_inputs_give_the_same_answer(cls, overrides, case):
    """Integer, boolean, object, list, read-only and non-contiguous forms of the same values
    give the same outputs as a C-contiguous float64 array."""
    est, _ = fitted(cls, overrides)
    # values every form can hold exactly: small integers (0/1 for Bernoulli models); + 0.0
    # turns the -0.0 that rounding leaves into 0.0 (see test_negative_zero_is_zero)
    X = np.round(data(est, n_samples=12, seed=2)).clip(-3, 3) + 0.0
    if case == "bool":
        X = (X != 0).astype(np.float64) if needs_unit_interval(est) else (X > 0).astype(np.float64)
    expected = outputs(est, X)
    got = outputs(est, EQUIVALENT_INPUTS[case](X))
    assert_outputs_equal(got, expected, rtol=1e-12, atol=1e-12)
    # fitting on the equivalent form gives the same model
    a = clone(est).fit(X)
    b = clone(est).fit(EQUIVALENT_INPUTS[case](X))
    for ta, tb in zip(state_tensors(a), state_tensors(b)):
        assert torch.equal(ta, tb)


@pytest.mark.parametrize("cls, overrides", cases("negative_zero"))
def test_negative_zero_is_zero(cls, overrides):
    """-0.0 and 0.0 are the same value: every output agrees."""
    est, X = fitted(cls, overrides)
    zero, negative_zero = X.copy(), X.copy()
    zero[:, 0] = 0.0
    negative_zero[:, 0] = -0.0
    assert_outputs_equal(outputs(est, negative_zero), outputs(est, zero))


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_sample_arguments(cls, overrides):
    est, X = fitted(cls, overrides)
    if not hasattr(est, "sample"):
        pytest.skip("no sample")
    assert est.sample(3, random_state=0).shape == (3, X.shape[1])
    for bad in (0, -1, 2.5, "a", None):
        with pytest.raises((ValueError, TypeError), match="n_samples") as info:
            est.sample(bad, random_state=0)
        assert_clean_error(info.value)
    for bad in ("x", -1):
        with pytest.raises(ValueError, match="seed|Seed"):
            est.sample(2, random_state=bad)
    with pytest.raises(NotFittedError):
        make(cls, **overrides).sample(2)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_read_only_memmap(cls, overrides, tmp_path):
    est, X = fitted(cls, overrides)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    assert_outputs_equal(outputs(est, ro), outputs(est, X))
    clone(est).fit(ro)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_float32_in_float32_out(cls, overrides):
    est, X = fitted(cls, overrides)
    X32 = X.astype(np.float32)
    got = outputs(est, X32)
    for name in ("transform", "inverse_transform", "score_samples", "decision_function"):
        if name in got:
            assert got[name].dtype == np.float32, name
    assert_outputs_equal(got, outputs(est, X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_one_sample_one_feature_and_big_batches(cls, overrides):
    """Degenerate but valid shapes work and give finite, NaN-free outputs."""
    est, X = fitted(cls, overrides)
    # one sample at inference: the same as that row of a batch
    one = outputs(est, X[:1])
    full = outputs(est, X)
    for name, value in one.items():
        if name == "score":
            continue
        np.testing.assert_allclose(value, full[name][:1], rtol=1e-6, atol=1e-6, err_msg=name)
    # fitting on one sample, on one feature, and with batch_size larger than n_samples: a
    # result, or (one sample) a ValueError that says so
    for Xfit, extra in [(data(est, n_samples=1), {}), (data(est, n_features=1), {}),
                        (data(est, n_samples=7), {"batch_size": 500})]:
        model = set_inner(clone(est), **extra)
        try:
            model.fit(Xfit)
        except ValueError as exc:
            assert len(Xfit) == 1 and "sample" in str(exc), exc
            continue
        assert_no_nan(outputs(model, Xfit))


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_wrong_feature_count_after_fit(cls, overrides):
    est, X = fitted(cls, overrides)
    n = X.shape[1]
    for Xw in (X[:, :-1], np.hstack([X, X[:, :1]])):
        for method in methods(est, INFERENCE_METHODS + ["partial_fit"]):
            with pytest.raises(ValueError, match=f"X has {Xw.shape[1]} features, but .* is expecting {n}"):
                call(est, method, Xw)
    if hasattr(est, "inverse_transform"):
        Z = est.transform(X)
        with pytest.raises(ValueError, match="features"):
            est.inverse_transform(np.hstack([Z, Z]))


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_not_fitted(cls, overrides):
    est = make(cls, **overrides)
    X = data(est)
    for method in methods(est, INFERENCE_METHODS + ["inverse_transform"]):
        with pytest.raises(NotFittedError):
            call(est, method, X)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_dataframes_and_feature_names(cls, overrides):
    """Feature-name warnings and errors exactly as scikit-learn gives them."""
    pd = pytest.importorskip("pandas")
    est = make(cls, **overrides)
    X = data(est)
    names = [f"f{i}" for i in range(X.shape[1])]
    named = pd.DataFrame(X, columns=names)
    unnamed = pd.DataFrame(X)  # integer column labels: no feature names

    model = clone(est).fit(named)
    np.testing.assert_array_equal(model.feature_names_in_, names)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        expected = outputs(model, named)  # same names: no warning
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        got = outputs(model, X)
    assert_outputs_equal(got, expected)
    with pytest.raises(ValueError, match="feature names should match"):
        model.transform(named[names[::-1]]) if hasattr(model, "transform") else model.score_samples(
            named[names[::-1]])
    with pytest.raises(ValueError, match="feature names should match"):
        model.partial_fit(named.rename(columns={"f0": "other"})) if hasattr(model, "partial_fit") \
            else model.score_samples(named.rename(columns={"f0": "other"}))

    model = clone(est).fit(unnamed)
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="has feature names, but"):
        got = outputs(model, named)
    assert_outputs_equal(got, expected)

    with pytest.raises(TypeError, match="string names"):
        clone(est).fit(pd.DataFrame(X, columns=["a", 1, *names[2:]]))
    nullable = named.astype("Float64")
    nullable.iloc[2, 0] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        clone(est).fit(nullable)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_bernoulli_models_reject_data_outside_unit_interval(cls, overrides):
    est, X = fitted(cls, overrides)
    if not needs_unit_interval(est):
        pytest.skip("not a Bernoulli model")
    for bad in (X * 2, X - 0.5):
        lo, hi = bad.min(), bad.max()
        for method in methods(est, INFERENCE_METHODS + ["partial_fit"]):
            with pytest.raises(ValueError, match=rf"\[0, 1\].*{lo:g} to {hi:g}.*MinMaxScaler"):
                call(est, method, bad)
        for method in methods(est, FIT_METHODS):
            with pytest.raises(ValueError, match="MinMaxScaler"):
                call(clone(est), method, bad)
    # the edges themselves are fine, and so is data strictly inside
    assert_no_nan(outputs(est, np.vstack([np.zeros(X.shape[1]), np.ones(X.shape[1]), X * 0.3])))
    if accepts_sparse(est):
        with pytest.raises(ValueError, match="MinMaxScaler"):
            est.transform(sp.csr_matrix(X * 3))


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_n_components_and_batch_size_limits(cls, overrides):
    est = make(cls, **overrides)
    if "n_components" not in est.get_params():
        pytest.skip("no n_components")
    X = data(est)
    for bad in (0, -1, 2.5, "two"):
        with pytest.raises((ValueError, TypeError), match="n_components"):
            clone(est).set_params(n_components=bad).fit(X)
    # more components than features: an overcomplete model works, or a ValueError says why
    try:
        model = clone(est).set_params(n_components=X.shape[1] + 3).fit(X)
    except ValueError as exc:
        assert "n_components" in str(exc)
    else:
        assert model.transform(X).shape == (len(X), X.shape[1] + 3)
        assert_no_nan(outputs(model, X))
    for bad in (0, -5, 1.5):
        with pytest.raises((ValueError, TypeError), match="batch_size"):
            clone(est).set_params(batch_size=bad).fit(X)


# Building a network too large for memory is a raw torch RuntimeError from the allocator
# ("DefaultCPUAllocator: can't allocate memory") instead of a clear error. Not fixable in the
# validation code; reported with a suggested fix for BaseNeuralEstimator._train.
_NO_ALLOC_ERROR = ("a network too large to allocate raises torch's raw RuntimeError; "
                   "fixed in BaseNeuralEstimator._train")


def test_network_too_large_to_allocate_is_a_clear_error():
    X = np.random.RandomState(0).randn(10, 4)
    est = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(10**11,), device="cpu")
    with pytest.raises((ValueError, MemoryError), match="hidden_layer_sizes|n_components"):
        est.fit(X)


# With activation="identity" or "relu", float32 input near the float32 limit overflows inside
# the network (inf - inf) and transform / score_samples return NaN without a word. Validation
# cannot see it coming; the suggested fix checks the output batch in _map_batches.
_SILENT_NAN = "finite float32 input near the float32 limit gives NaN outputs; fixed by the output check in _map_batches"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow notes on the way
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_extreme_float32_input_never_gives_silent_nan(activation):
    rng = np.random.RandomState(0)
    ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), activation=activation,
                                max_iter=3, random_state=0, device="cpu").fit(rng.randn(30, 4))
    huge = rng.choice([-3e38, 3e38], size=(50, 4)).astype(np.float32)
    for method, X in [("transform", huge), ("score_samples", huge), ("inverse_transform", huge[:, :2])]:
        try:
            out = call(ae, method, X)
        except ValueError as exc:
            assert_clean_error(exc)
        else:
            assert not np.isnan(out).any(), f"{method} returned NaN for finite input"


# Adam divides the learning rate by its bias correction (0.1 at the first step): at 1e38 that
# overflows float32 and torch raises a raw RuntimeError from optimizer.step, after Adam's
# moment estimates were already updated (partial_fit then does not roll back).
_ADAM_OVERFLOW = ("a learning rate that overflows Adam's step raises torch's RuntimeError, not "
                  "DivergenceError; fixed in _engine.train")


def test_learning_rate_that_overflows_the_optimizer_is_a_divergence():
    X = np.random.RandomState(0).randn(30, 4)
    with pytest.raises(DivergenceError, match="Lower learning_rate"):
        AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), learning_rate_init=1e38,
                               max_iter=3, random_state=0, device="cpu").fit(X)


# ``callbacks`` is checked to be a list, not what is in it: skorch then fails with a raw
# AttributeError ('int' object has no attribute 'set_params') deep inside initialize.
def test_bad_callbacks_are_a_clear_error():
    X = np.random.RandomState(0).randn(20, 3)
    with pytest.raises(TypeError, match="callback"):
        AutoencoderTransformer(n_components=2, callbacks=[1], device="cpu", max_iter=2).fit(X)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_device_requests(cls, overrides):
    est = make(cls, **overrides)
    X = data(est)
    cases = {"mps": "not supported", "nonsense": "not a valid device"}
    if not torch.cuda.is_available():
        cases.update({"cuda": "CUDA is not available", "cuda:1": "CUDA is not available"})
    for device, pattern in cases.items():
        model = set_inner(clone(est), device=device)
        for method in methods(model, FIT_METHODS):
            with pytest.raises(ValueError, match=pattern):
                call(model, method, X)
            assert device in model.get_params().values()  # never rewritten
            with pytest.raises(NotFittedError):
                model.score_samples(X)
    with pytest.raises(ValueError, match="device"):
        set_inner(clone(est), device=None).fit(X)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow notes on the way
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_values_beyond_float32_are_refused_for_training(cls, overrides):
    """The networks train in float32: float64 values beyond its range are a clear ValueError
    (they used to become inf on the way to the device and end as a misleading divergence).
    Inference computes in float64 for float64 input, so there such values are fine."""
    est, X = fitted(cls, overrides)
    if needs_unit_interval(est):
        pytest.skip("a Bernoulli model refuses such values as outside [0, 1]")
    huge = X * 1e300
    for method in methods(est, FIT_METHODS):
        with pytest.raises(ValueError, match="float32 range.*StandardScaler") as info:
            call(clone(est), method, huge)
        assert not isinstance(info.value, DivergenceError)
    with pytest.raises(ValueError, match="float32 range"):
        copy.deepcopy(est).partial_fit(huge) if hasattr(est, "partial_fit") else clone(est).fit(huge)
    assert_no_nan({k: v for k, v in outputs(est, huge).items() if k not in ("transform", "inverse_transform")})


# ----------------------------------------------------------------------------- divergence
def _diverging_data(est, X):
    """Data that drives the loss to infinity at once where the model allows it; Bernoulli
    models get their own data and diverge through the learning rate alone."""
    return X if needs_unit_interval(est) else X * 1e20


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_divergence_is_a_clear_error(cls, overrides):
    est = make(cls, **overrides)
    X = data(est)
    set_inner(est, **{learning_rate_param(est): divergent_learning_rate(est)})
    with pytest.raises(DivergenceError, match="diverged.*Lower learning_rate") as info:
        est.fit(_diverging_data(est, X))
    assert isinstance(info.value, ValueError)
    # nothing half-fitted is left behind
    with pytest.raises(NotFittedError):
        est.score_samples(X)
    if hasattr(est, "partial_fit"):
        model = clone(est)
        with pytest.raises(DivergenceError):
            for _ in range(5):  # a first partial_fit runs one epoch; some models need two
                model.partial_fit(_diverging_data(est, X))
        if not hasattr(model, "net_"):
            with pytest.raises(NotFittedError):
                model.score_samples(X)


def _fitted_snapshot(est):
    attrs = {k: copy.deepcopy(v) for k, v in vars(est).items()
             if k.endswith("_") and not k.startswith("__") and not isinstance(v, BaseEstimator)
             and not any(True for _ in iter_nets(v))}
    return attrs, state_tensors(est), [len(net.history) for net in iter_nets(est)]


def _set_lr(est, lr):
    """The learning rate, set as a user sets it: the estimator's parameter, which the next
    partial_fit applies to the fitted optimizer."""
    set_inner(est, **{learning_rate_param(est): lr})


@pytest.mark.parametrize("cls, overrides", cases("partial_fit_divergence"))
def test_partial_fit_divergence_leaves_the_model_exactly_as_it_was(cls, overrides):
    est, X = fitted(cls, overrides)
    est = pickle.loads(pickle.dumps(est))
    if not hasattr(est, "partial_fit"):
        pytest.skip("no partial_fit")
    Xtrain = data(est)
    _set_lr(est, divergent_learning_rate(est))
    for _ in range(5):  # some models need a few epochs at this rate to diverge
        twin = copy.deepcopy(est)
        attrs, tensors, lengths = _fitted_snapshot(est)
        before = _attempt(outputs, est, X)
        try:
            est.partial_fit(_diverging_data(est, Xtrain))
        except DivergenceError as exc:
            assert "Lower learning_rate" in str(exc)
            break
    else:
        pytest.fail("partial_fit did not diverge")
    attrs2, tensors2, lengths2 = _fitted_snapshot(est)
    assert lengths2 == lengths
    assert len(tensors2) == len(tensors)
    for a, b in zip(tensors, tensors2):
        assert _same_tensor(a, b)
    assert attrs2.keys() == attrs.keys()
    for k in attrs:
        _assert_same_value(attrs2[k], attrs[k], k)
    _assert_same_attempt(_attempt(outputs, est, X), before)
    # the model carries on exactly as if the failed call had never happened
    _set_lr(est, 1e-3)
    _set_lr(twin, 1e-3)
    _assert_same_attempt(_attempt(est.partial_fit, Xtrain), _attempt(twin.partial_fit, Xtrain))
    for a, b in zip(state_tensors(est), state_tensors(twin)):
        assert _same_tensor(a, b)
    _assert_same_attempt(_attempt(outputs, est, X), _attempt(outputs, twin, X))


def _same_tensor(a, b):
    """Equal values, NaN included (a model may already be broken before the failed call)."""
    if a.is_floating_point():
        return a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)
    return torch.equal(a, b)


def _assert_same_value(a, b, name):
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), name
        for x, y in zip(a, b):
            _assert_same_value(x, y, name)
    elif isinstance(a, np.ndarray) or np.isscalar(a):
        np.testing.assert_array_equal(a, b, err_msg=name)
    elif torch.is_tensor(a):
        assert _same_tensor(a, b), name


def _attempt(fn, *args):
    """("ok", result) or ("error", type, message): outcomes to compare."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def _assert_same_attempt(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1:] == b[1:]
    elif isinstance(a[1], dict):
        assert_outputs_equal(a[1], b[1])


_NAN_WEIGHTS = ("the divergence guard checks each batch's loss, computed before the step: the "
                "last step of a call can leave non-finite weights behind a finite loss, and "
                "transform then returns NaN; fixed by DivergenceGuard.on_epoch_end")


_VAE_NAN_SCORES = ("with huge but finite weights, VAETransformer.score_samples returns NaN "
                   "(inf - inf in the importance weights) without an error; the suggested "
                   "output check for _map_batches turns it into a ValueError")


def _nan_weights_cases():
    out = []
    for p in VARIANTS:
        marks = []
        out.append(pytest.param(*p.values, id=p.id, marks=marks))
    return out


@pytest.mark.parametrize("cls, overrides", _nan_weights_cases())
def test_training_never_leaves_non_finite_weights_silently(cls, overrides):
    """At a learning rate far too high, every call either raises DivergenceError or leaves a
    model whose weights and outputs are finite."""
    est, X = fitted(cls, overrides)
    est = copy.deepcopy(est)
    if not hasattr(est, "partial_fit"):
        pytest.skip("no partial_fit")
    _set_lr(est, divergent_learning_rate(est))
    for _ in range(5):
        try:
            est.partial_fit(_diverging_data(est, data(est)))
        except DivergenceError:
            break
        for t in state_tensors(est):
            if t.is_floating_point():
                assert torch.isfinite(t).all(), "non-finite weights after a call that succeeded"
        for method in methods(est, INFERENCE_METHODS):
            outcome = _attempt(call, est, method, X)
            if outcome[0] == "ok":
                assert_no_nan({method: outcome[1]})
            else:  # refusing to answer is fine, if it says why
                assert issubclass(outcome[1], ValueError) and "NaN" in outcome[2], outcome


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_failed_refit_keeps_the_previous_model(cls, overrides):
    """A fit that fails (here: diverges on data with more features) leaves the previously
    fitted model usable and consistent, feature count included."""
    est, X = fitted(cls, overrides)
    est = pickle.loads(pickle.dumps(est))
    before = outputs(est, X)
    wide = data(est, n_features=X.shape[1] + 2)
    set_inner(est, **{learning_rate_param(est): divergent_learning_rate(est)})
    with pytest.raises(DivergenceError):
        est.fit(_diverging_data(est, wide))
    assert core(est).n_features_in_ == X.shape[1]
    assert_outputs_equal(outputs(est, X), before)
    with pytest.raises(ValueError, match="features"):
        call(est, methods(est, INFERENCE_METHODS)[0], wide)


# ---------------------------------------------------------------------------- interruption
class _SigintAfter(Callback):
    """Send this process a real SIGINT (what Ctrl-C does) from another thread after an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT)).start()


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="SIGINT is not delivered as KeyboardInterrupt here")
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_ctrl_c_keeps_the_weights_trained_so_far(cls, overrides):
    probe = make(cls, **overrides)
    if not has_param(probe, "callbacks"):
        pytest.skip("no callbacks parameter to time the interrupt with")
    max_iter = 100_000
    est = make(cls, **overrides, max_iter=max_iter, tol=0.0, n_iter_no_change=max_iter,
               callbacks=[("sigint", _SigintAfter(3))])
    X = data(est)
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            est.fit(X)
    except KeyboardInterrupt:  # pragma: no cover - would otherwise end the whole test run
        pytest.fail("Ctrl-C escaped fit")
    curves = getattr(core(est), "loss_curves_", [core(est).loss_curve_])  # a stack: every layer
    assert 3 <= sum(len(c) for c in curves) < max_iter
    assert len(core(est).loss_curve_) == core(est).n_iter_
    res = outputs(est, X)
    assert_no_nan(res)
    # the weights are those trained so far: not the initial ones
    initial = make(cls, **overrides, max_iter=1)
    initial_tensors = state_tensors(initial.fit(X))
    trained = state_tensors(est)
    assert any(not torch.equal(a, b) for a, b in zip(trained, initial_tensors))
    # and the estimator carries on
    set_inner(est, callbacks=None)
    if hasattr(est, "partial_fit"):
        n = est.n_iter_
        est.partial_fit(X)
        assert est.n_iter_ == n + 1
    assert_outputs_equal(outputs(pickle.loads(pickle.dumps(est)), X), outputs(est, X))


# ----------------------------------------------------------------------------- portability
def _device_storage_tagger(est):
    """A torch serialization tagger that labels the storages a GPU machine would hold on CUDA
    (every tensor of the estimators' nets) as ``cuda:0``. torch writes the location tag of each
    storage into the pickle; with this tagger the bytes carry the same tags as a pickle written
    on a GPU machine, so loading them exercises the map-to-CPU path for real."""
    ptrs = set()
    for net in iter_nets(est):
        modules = [net.module_, net.criterion_, net.module, net.criterion]
        for obj in (m for m in modules if isinstance(m, torch.nn.Module)):
            ptrs |= {t.untyped_storage().data_ptr() for t in obj.state_dict().values() if torch.is_tensor(t)}
        for st in net.optimizer_.state.values():
            ptrs |= {v.untyped_storage().data_ptr() for v in st.values() if torch.is_tensor(v)}
    for value in vars(est).values():  # tensors the estimator keeps itself
        if torch.is_tensor(value) and value.is_floating_point():
            ptrs.add(value.untyped_storage().data_ptr())
    ptrs.discard(0)
    hits = []

    def tag(storage):
        if storage.data_ptr() in ptrs:
            hits.append(storage.data_ptr())
            return "cuda:0"
        return None

    return tag, hits


def pickle_as_if_on_gpu(est):
    tag, hits = _device_storage_tagger(est)
    nets = list(iter_nets(est))
    devices = [net.device for net in nets]
    torch.serialization.register_package(-100, tag, lambda storage, location: None)
    try:
        for net in nets:
            net.device = "cuda"
        blob = pickle.dumps(est)
    finally:
        registry = torch.serialization._package_registry
        registry[:] = [entry for entry in registry if entry[1] is not tag]
        for net, device in zip(nets, devices):
            net.device = device
    assert hits, "the simulated GPU pickle holds no CUDA-tagged storage"
    return blob


# A fitted net holds its module twice: as ``module_`` (which skorch pickles through torch.load
# with map_location) and as the ``module`` parameter it was built with (an instance, pickled
# plainly, with no map_location). On a CPU-only machine the second copy cannot be loaded.
_GPU_PICKLE = ("skorch pickles the `module` / `criterion` instances given to NeuralNet without "
               "map_location; fixed by _engine._Net")


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_gpu_pickle_unpickles_on_a_cpu_only_machine(cls, overrides):
    """Simulated: the pickle carries CUDA location tags as one written on a GPU machine does;
    this CPU-only machine must load it onto the CPU and score identically."""
    est, X = fitted(cls, overrides)
    est = set_inner(pickle.loads(pickle.dumps(est)), device="auto")
    blob = pickle_as_if_on_gpu(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning: loading on the CPU instead
        loaded = pickle.loads(blob)
    for net in iter_nets(loaded):
        assert str(net.device) == "cpu"
        assert all(p.device.type == "cpu" for p in net.module_.parameters())
    assert_outputs_equal(outputs(loaded, X), outputs(est, X), rtol=1e-6, atol=1e-6)
    if hasattr(loaded, "partial_fit"):
        loaded.partial_fit(data(est))


def test_simulated_gpu_pickle_really_needs_map_location():
    """The simulation is real: its CUDA-tagged storages cannot be loaded here without
    map_location, exactly like a pickle from a GPU machine."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    est, _ = fitted(AutoencoderTransformer, {})
    weight = next(iter_nets(est)).module_.state_dict()["encoder.0.weight"]
    tag, hits = _device_storage_tagger(est)
    torch.serialization.register_package(-100, tag, lambda storage, location: None)
    try:
        buf = io.BytesIO()
        torch.save(weight, buf)
    finally:
        registry = torch.serialization._package_registry
        registry[:] = [entry for entry in registry if entry[1] is not tag]
    assert hits
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=True, map_location="cpu")
    assert torch.equal(loaded, weight)


_CPU_ONLY_CHILD = """
import pickle, sys
import numpy as np, torch
assert not torch.cuda.is_available()
est = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2])
np.save(sys.argv[3], est.score_samples(X))
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_real_gpu_pickle_scores_identically_on_cpu(cls, overrides, tmp_path):
    """The real thing: fit on the GPU, unpickle in a process that cannot see it."""
    est = set_inner(make(cls, **overrides), device="cuda")
    X = data(est)
    est.fit(X)
    (tmp_path / "est.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", _CPU_ONLY_CHILD, str(tmp_path / "est.pkl"),
                    str(tmp_path / "X.npy"), str(tmp_path / "s.npy")], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), est.score_samples(X.astype(np.float32)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_weights_round_trip_through_weights_only_torch_load(cls, overrides):
    """What a torch upgrade must keep reading: every module's state dict holds plain tensors,
    which torch.load(weights_only=True) loads (no arbitrary unpickling) into a model whose
    weights were wiped; the outputs come back identical."""
    est, X = fitted(cls, overrides)
    copy_ = copy.deepcopy(est)
    for src, dst in zip(iter_nets(est), iter_nets(copy_)):
        buf = io.BytesIO()
        torch.save(src.module_.state_dict(), buf)
        with torch.no_grad():
            for t in dst.module_.state_dict().values():
                if torch.is_tensor(t) and t.is_floating_point():
                    t.zero_()
        state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True, map_location="cpu")
        assert all(torch.is_tensor(v) for k, v in state.items() if not k.endswith("_extra_state"))
        dst.module_.load_state_dict(state)
    assert_outputs_equal(outputs(copy_, X), outputs(est, X))


#: modules a pickled estimator may reference: torch's public nn / optim classes, its tensor
#: rebuild helpers (which torch keeps loadable across versions), and the libraries we build on
_ALLOWED_PICKLE_MODULES = re.compile(
    r"^(sklearn_ae(\.|$)|skorch(\.|$)|sklearn(\.|$)|numpy(\.|$)|scipy(\.|$)|builtins$|copyreg$|"
    r"collections$|functools$|_codecs$|torch$|torch\._utils$|torch\.storage$|torch\.nn\.modules\.|"
    r"torch\.nn\.parameter$|torch\.optim\.|torch\._C$|torch\._tensor$|torch\.serialization$)")


def _pickle_globals(blob):
    """Every (module, name) a pickle references, following the pickles nested in it as bytes
    (skorch pickles the device-dependent attributes separately)."""
    import pickletools

    found, memo, pushed, last = set(), {}, [], None
    for op, arg, _ in pickletools.genops(blob):
        value = None
        if op.name in ("GLOBAL", "INST"):
            found.add(tuple(arg.split(" ", 1)))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            value = arg
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            value = memo.get(int(arg))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
            continue
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last
            continue
        elif op.name == "STACK_GLOBAL":
            found.add((pushed[-2], pushed[-1]))
        elif op.name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8") and arg[:1] == b"\x80":
            try:
                found |= _pickle_globals(arg)
            except Exception:  # raw storage bytes that merely start like a pickle
                pass
        if value is not None:
            pushed.append(value)
        last = value
    return found


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_pickle_references_only_stable_public_classes(cls, overrides):
    """A pickle that names only public torch.nn / optim classes and torch's tensor-rebuild
    helpers loads on the next torch minor version; private torch internals might not."""
    est, _ = fitted(cls, overrides)
    refs = _pickle_globals(pickle.dumps(est))
    assert (type(est).__module__, type(est).__name__) in refs
    bad = sorted(f"{m}.{n}" for m, n in refs if not _ALLOWED_PICKLE_MODULES.match(m))
    assert not bad, f"the pickle references unexpected classes: {bad}"


def test_the_package_never_loads_arbitrary_pickles():
    """Anything the package itself loads from disk goes through torch.load(weights_only=True)
    or plain arrays: a static check of the package's source."""
    from pathlib import Path

    root = Path(sklearn_ae.__file__).parent
    problems = []
    for path in sorted(root.rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\bpickle\.loads?\(|\bjoblib\.load\(|allow_pickle\s*=\s*True", code):
                problems.append(f"{path.name}:{lineno}: {line.strip()}")
            if "torch.load(" in code and "weights_only=True" not in code:
                problems.append(f"{path.name}:{lineno}: {line.strip()}")
    assert not problems, problems


# skorch passes ``torch_load_kwargs`` to torch.load in ``NeuralNet.load_params`` and when it
# unpickles a net; build_net sets weights_only=False, so a params file loaded into a fitted
# estimator's net may run arbitrary code. weights_only=True unpickles our nets fine (checked).
def test_nets_load_weights_only():
    est, X = fitted(AutoencoderTransformer, {})
    for net in iter_nets(est):
        assert net.torch_load_kwargs.get("weights_only", True) is True


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_fixed_random_state_is_bit_identical(cls, overrides):
    est = make(cls, **overrides, max_iter=4)
    X = data(est)
    Xtest = data(est, n_samples=9, seed=3)
    a, b = clone(est).fit(X), clone(est).fit(X)
    ta, tb = state_tensors(a), state_tensors(b)
    assert len(ta) == len(tb) > 0
    for x, y in zip(ta, tb):
        assert torch.equal(x, y)
    assert_outputs_equal(outputs(a, Xtest), outputs(b, Xtest))
    # inference is deterministic: calling twice gives the same answer
    assert_outputs_equal(outputs(a, Xtest), outputs(a, Xtest))
    if hasattr(a, "sample"):
        np.testing.assert_array_equal(a.sample(5, random_state=0), a.sample(5, random_state=0))


_CHILD = """
import importlib.util, sys, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("reliability", sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
sys.stdout.write(repr(mod.fingerprints()))
"""


def fingerprints():
    """A hash of every output of every variant, fitted with max_iter=4."""
    import hashlib

    out = {}
    for p in VARIANTS:
        cls, overrides = p.values
        est = make(cls, **overrides, max_iter=4)
        est.fit(data(est))
        res = outputs(est, data(est, n_samples=9, seed=3))
        out[p.id] = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in res.items()}
    return out


def test_bit_identical_across_processes():
    """A fresh interpreter (same thread setting) trains bit-identical models."""
    here = fingerprints()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", _CHILD, root, os.path.abspath(__file__)],
                          capture_output=True, text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert eval(proc.stdout) == here


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_cuda_is_reproducible_to_tolerance(cls, overrides):
    est = make(cls, **{**overrides, "device": "cuda", "max_iter": 4})
    X = data(est).astype(np.float32)
    a = outputs(clone(est).fit(X), X)
    b = outputs(clone(est).fit(X), X)
    assert_outputs_equal(a, b, rtol=1e-4, atol=1e-5)


def _global_rng_state():
    return (torch.initial_seed(), torch.get_rng_state(), np.random.get_state()[1].copy(),
            np.random.get_state()[2], random.getstate(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def _assert_same_rng_state(a, b):
    assert a[0] == b[0], "torch.initial_seed() changed"
    assert torch.equal(a[1], b[1]), "torch's global generator was used"
    assert np.array_equal(a[2], b[2]) and a[3] == b[3], "NumPy's global RandomState was used"
    assert a[4] == b[4], "Python's random module was used"
    if a[5] is not None:
        assert all(torch.equal(x, y) for x, y in zip(a[5], b[5])), "a CUDA generator was used"


@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_global_random_state_is_never_touched(cls, overrides):
    est = make(cls, **overrides)
    X = data(est)
    start = _global_rng_state()
    est.fit(X)
    outputs(est, X)
    for method in methods(est, ["partial_fit", "fit_transform", "fit_predict"]):
        call(est, method, X)
    if hasattr(est, "sample"):
        est.sample(3, random_state=0)
    pickle.loads(pickle.dumps(est)).score(X) if hasattr(est, "score") else None
    _assert_same_rng_state(start, _global_rng_state())


# ------------------------------------------------------------------------- resource bounds
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_inference_memory_does_not_grow_with_n_samples(cls, overrides, tmp_path):
    """On a memory-mapped array, inference allocates no more than a few batches beyond its
    output, whatever the number of rows (NumPy allocations traced; torch's CPU tensors of a
    batch are views of them or of the same size)."""
    from sklearn_ae import _base

    est, _ = fitted(cls, overrides)
    n_features = est.n_features_in_
    batch_bytes = _base.INFERENCE_BATCH_SIZE * max(n_features, 8) * 8
    extra = {}
    for n in (10_000, 100_000):
        path = tmp_path / f"X{n}.dat"
        mm = np.memmap(path, dtype=np.float64, mode="w+", shape=(n, n_features))
        rng = np.random.RandomState(0)
        for start in range(0, n, 25_000):
            block = rng.randn(min(25_000, n - start), n_features)
            mm[start:start + len(block)] = (block > 0) if needs_unit_interval(est) else block
        mm.flush()
        del mm
        X = np.memmap(path, dtype=np.float64, mode="r", shape=(n, n_features))
        peaks = []
        for method in methods(est, ["transform", "score_samples", "decision_function"]):
            gc.collect()
            tracemalloc.start()
            try:
                out = call(est, method, X)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            peaks.append(peak - np.asarray(out).nbytes)
        extra[n] = max(peaks)
        del X
    assert extra[100_000] < 4 * batch_bytes + 1_000_000, extra
    assert extra[100_000] < extra[10_000] + batch_bytes, extra


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls, overrides", VARIANTS)
def test_no_cuda_memory_leak_across_fits(cls, overrides):
    est = make(cls, **{**overrides, "device": "cuda"}) if "device" in _params(cls) else make(cls, **overrides)
    X = data(est, n_samples=2000, n_features=20)
    clone(est).fit(X)
    gc.collect()
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    for _ in range(5):
        model = clone(est).fit(X)
        outputs(model, X)
        del model
        gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= baseline + 1_000_000
    peak_small = _peak_cuda_inference(est, X[:5000])
    peak_large = _peak_cuda_inference(est, np.tile(X, (20, 1)))
    assert peak_large < peak_small + 8 * 20 * 4096 * 8


def _peak_cuda_inference(est, X):
    model = clone(est).fit(X[:500])
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    outputs(model, X)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - start
