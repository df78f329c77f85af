"""Property-based tests: generated shapes, dtypes, containers and values, every public estimator.

Every outcome must be a result without NaN, or a ``ValueError`` / ``TypeError`` with a helpful
message raised by scikit-learn, NumPy or us, never a raw torch error or a hang. Inputs that
must be refused (NaN, infinity, no samples or features, complex numbers, values outside [0, 1]
for a Bernoulli model, the wrong number of features) must be refused; clean input must work.

Values include +-1e300 (beyond float32: training refuses them, float64 inference copes) but not
float32 input near the float32 limit, which is the subject of
``test_reliability.test_extreme_float32_input_never_gives_silent_nan``.
"""

import importlib.util
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sklearn_ae import DivergenceError

_spec = importlib.util.spec_from_file_location("_reliability", Path(__file__).with_name("test_reliability.py"))
rel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rel)

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: a call that takes longer than this on these tiny inputs counts as a hang
HANG_SECONDS = 20.0

DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128", "object"]
CONTAINERS = ["array", "fortran", "list", "dataframe", "csr"]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 1e6, -1e6, 1e-300, 1e300, -1e300]


@st.composite
def inputs(draw, n_features=None, unit=False):
    """(X as handed to the estimator, the float64 values it holds or None, dtype, container)."""
    n_samples = draw(st.integers(0, 12))
    if n_features is None:
        n_features = draw(st.integers(0, 6))
    dtype = draw(st.sampled_from(DTYPES))
    container = draw(st.sampled_from(CONTAINERS))
    moderate = st.floats(0.0, 1.0) if unit else st.floats(-1e3, 1e3)
    elements = st.one_of(moderate, moderate, moderate, st.sampled_from(SPECIAL), st.floats(-2.0, 2.0))
    values = draw(hnp.arrays(np.float64, (n_samples, n_features), elements=elements))
    if dtype in ("int64", "int8", "uint8", "bool"):
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)
        info = np.iinfo(dtype) if dtype != "bool" else None
        values = np.round(values if info is None else values.clip(info.min, info.max))
        X = values.astype(dtype)
        values = X.astype(np.float64)
    elif dtype == "object":
        X = values.astype(object)
    else:
        X = values.astype(dtype)
        values = X.astype(np.complex128 if dtype.startswith("complex") else np.float64)
    if container == "fortran":
        X = np.asfortranarray(X)
    elif container == "list":
        X = X.tolist()
    elif container == "dataframe":
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(X)
    elif container == "csr":
        if dtype in ("object", "float16") or n_samples == 0 or n_features == 0:
            container = "array"
        else:
            X = sp.csr_matrix(X)
    return X, values, dtype, container


def refusal_reasons(est, values, dtype, container, n_features_expected=None, training=False):
    """Why X must be refused (empty: it must be accepted)."""
    reasons = []
    n, d = values.shape
    if n == 0:
        reasons.append("no samples")
    if d == 0:
        reasons.append("no features")
    if n_features_expected is not None and d != n_features_expected:
        reasons.append("wrong number of features")
    if dtype.startswith("complex"):
        reasons.append("complex")
    if container == "csr" and not rel.accepts_sparse(est):
        reasons.append("sparse")
    real = values.real if np.iscomplexobj(values) else values
    if real.size and not np.isfinite(real).all():
        reasons.append("non-finite")
    if rel.needs_unit_interval(est) and real.size and np.isfinite(real).all() and (
            real.min() < 0 or real.max() > 1):
        reasons.append("outside [0, 1]")
    if training and real.size and np.isfinite(real).all() and np.abs(real).max() > np.finfo(np.float32).max:
        reasons.append("beyond the float32 range the network trains in")
    return reasons


def run(fn, *args):
    start = time.perf_counter()
    try:
        result = ("ok", fn(*args))
    except (ValueError, TypeError) as exc:
        rel.assert_clean_error(exc)
        result = ("error", exc)
    elapsed = time.perf_counter() - start
    assert elapsed < HANG_SECONDS, f"{fn} took {elapsed:.1f}s"
    return result


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # feature-name and interruption notes
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's casts of inf / NaN in drawing
        yield


def _check_outcome(outcome, reasons, what, est):
    if reasons:
        assert outcome[0] == "error", f"{what} accepted input it must refuse ({reasons})"
        return
    if outcome[0] == "error":
        exc = outcome[1]
        if isinstance(exc, DivergenceError):
            # clean but badly scaled data (values up to 1e6) may blow the loss up: a clear
            # error that says what to do is a valid outcome
            event(f"{what}: clean input, DivergenceError")
            assert "Lower learning_rate" in str(exc)
            return
        # one sample is allowed to be refused by a model that needs a spread (with a reason)
        assert "sample" in str(exc) and "1" in str(exc), f"{what} refused clean input: {exc!r}"


@pytest.mark.parametrize("cls, overrides", rel.VARIANTS)
@settings(max_examples=12, **SETTINGS)
@given(data=st.data())
def test_fit_on_generated_input(cls, overrides, data):
    est = rel.make(cls, **overrides)
    X, values, dtype, container = data.draw(inputs(unit=rel.needs_unit_interval(est)))
    reasons = refusal_reasons(est, values, dtype, container, training=True)
    outcome = run(clone(est).fit, X)
    _check_outcome(outcome, reasons, "fit", est)
    event(f"fit: {'refused' if reasons else 'clean'} input, {outcome[0]}")
    if outcome[0] == "ok":
        model = outcome[1]
        res = run(rel.outputs, model, X)
        assert res[0] == "ok", f"a fitted model refused its own training data: {res[1]!r}"
        rel.assert_no_nan(res[1])


_MODELS = {}


def _fitted(cls, overrides):
    key = (cls.__name__, tuple(sorted(overrides.items())))
    if key not in _MODELS:
        est = rel.make(cls, **overrides)
        _MODELS[key] = est.fit(rel.data(est, n_features=3))
    return _MODELS[key]


@pytest.mark.parametrize("cls, overrides", rel.VARIANTS)
@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_inference_on_generated_input(cls, overrides, data):
    est = _fitted(cls, overrides)
    n_features = data.draw(st.one_of(st.just(3), st.just(3), st.integers(0, 6)))
    X, values, dtype, container = data.draw(inputs(n_features=n_features,
                                                   unit=rel.needs_unit_interval(est)))
    reasons = refusal_reasons(est, values, dtype, container, n_features_expected=3)
    event(f"inference: {'refused' if reasons else 'clean'} input")
    for method in rel.methods(est, rel.INFERENCE_METHODS):
        outcome = run(getattr(est, method), X)
        _check_outcome(outcome, reasons, method, est)
        if outcome[0] == "ok":
            rel.assert_no_nan({method: outcome[1]})


@pytest.mark.parametrize("cls, overrides", rel.VARIANTS)
@settings(max_examples=15, **SETTINGS)
@given(data=st.data())
def test_inverse_transform_on_generated_codes(cls, overrides, data):
    est = _fitted(cls, overrides)
    if not hasattr(est, "inverse_transform"):
        pytest.skip("no inverse_transform")
    width = est.transform(rel.data(est, n_samples=1, n_features=3)).shape[1]
    n_components = data.draw(st.one_of(st.just(width), st.integers(0, 4)))
    Z, values, dtype, container = data.draw(inputs(n_features=n_components))
    if container == "csr":
        return  # codes are dense by nature; sparse input is covered for X
    reasons = refusal_reasons(rel.make(rel.AutoencoderTransformer), values, dtype, container,
                              n_features_expected=width)
    outcome = run(est.inverse_transform, Z)
    _check_outcome(outcome, reasons, "inverse_transform", est)
    if outcome[0] == "ok":
        rel.assert_no_nan({"inverse_transform": outcome[1]})


@pytest.mark.parametrize("cls, overrides", rel.VARIANTS)
@settings(max_examples=10, **SETTINGS)
@given(data=st.data())
def test_partial_fit_stream_on_generated_batches(cls, overrides, data):
    """A stream of generated batches: bad ones are refused and change nothing; good ones train."""
    est = rel.make(cls, **overrides)
    if not hasattr(est, "partial_fit"):
        pytest.skip("no partial_fit")
    model = clone(est).partial_fit(rel.data(est, n_features=3))
    for _ in range(3):
        X, values, dtype, container = data.draw(inputs(n_features=data.draw(st.sampled_from([3, 3, 2])),
                                                       unit=rel.needs_unit_interval(est)))
        reasons = refusal_reasons(est, values, dtype, container, n_features_expected=3,
                                  training=True)
        event(f"partial_fit: {'refused' if reasons else 'clean'} input")
        before = rel.state_tensors(model)
        n_iter = model.n_iter_
        outcome = run(model.partial_fit, X)
        _check_outcome(outcome, reasons, "partial_fit", est)
        if outcome[0] == "error":
            assert model.n_iter_ == n_iter
            for a, b in zip(before, rel.state_tensors(model)):
                assert rel._same_tensor(a, b)
        else:
            assert model.n_iter_ == n_iter + 1
        rel.assert_no_nan(rel.outputs(model, rel.data(est, n_samples=5, n_features=3)))


@pytest.mark.parametrize("cls, overrides", rel.VARIANTS)
@settings(max_examples=10, **SETTINGS)
@given(n_samples=st.integers(1, 30), n_features=st.integers(1, 6), batch_size=st.integers(1, 64),
       n_components=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_shapes_and_sizes(cls, overrides, n_samples, n_features, batch_size, n_components, seed):
    """Any shape, batch size (even beyond n_samples) and code size (even beyond n_features)."""
    est = rel.make(cls, **overrides)
    params = est.get_params()
    extra = {k: v for k, v in [("batch_size", batch_size), ("n_components", n_components),
                               ("random_state", seed)] if k in params or f"estimator__{k}" in params}
    rel.set_inner(est, **extra)
    X = rel.data(est, n_samples=n_samples, n_features=n_features, seed=seed % 1000)
    outcome = run(est.fit, X)
    _check_outcome(outcome, [], "fit", est)
    if outcome[0] == "ok":
        res = rel.outputs(est, X)
        rel.assert_no_nan(res)
        if "transform" in res and "n_components" in params:
            assert res["transform"].shape == (n_samples, n_components)
