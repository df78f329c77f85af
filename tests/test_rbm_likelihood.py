"""BernoulliRBMStack's scoring: log Z by AIS that checks itself (log_partition="auto"), the
RAISE / AIS bounds of log_likelihood_bounds against exact enumeration, parameters checked where
they are used, reproducibility, and the progress bars of verbose scoring."""

import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sklearn_ae import BernoulliRBMStack, _rbm


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def prototypes(seed, n_features=14, n_rows=600, flip=0.05):
    """Binary data around four random prototypes: a multimodal density."""
    rng = np.random.RandomState(seed)
    centres = rng.rand(4, n_features) > 0.5
    X = centres[rng.randint(0, 4, n_rows)]
    return np.where(rng.rand(*X.shape) < flip, ~X, X).astype(np.float64)


def trained_rbm(seed, n_components=8, **params):
    """A small RBM trained to fit ``prototypes(seed)``; its log Z is enumerable. Persistent CD
    at a constant rate gives the sharply multimodal models these tests need."""
    X = prototypes(seed)
    params = {"learning_rate": 0.1, "batch_size": 20, "max_iter": 30, "persistent": True,
              "learning_rate_schedule": "constant", **params}
    rbm = BernoulliRBMStack(n_components=n_components, random_state=seed, device="cpu", **params)
    return rbm.fit(X), X


def exact_scores(rbm, X):
    twin = copy.deepcopy(rbm).set_params(log_partition="exact")
    return twin.score_samples(X)


# ------------------------------------------------------------------------ bounds
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bounds_bracket_the_exact_log_likelihood(seed):
    """Trained RBMs, 1,000 betas both ways: lower <= exact <= upper for every sample, within
    three standard errors, and the bracket is narrow."""
    rbm, X = trained_rbm(seed)
    exact = exact_scores(rbm, X[:30])
    rbm.set_params(log_partition="ais", n_ais_betas=1000)
    lower, upper, lower_se, upper_se = rbm.log_likelihood_bounds(X[:30], n_runs=10,
                                                                 return_stderr=True)
    assert np.all(lower <= exact + 3 * lower_se)
    assert np.all(upper >= exact - 3 * upper_se)
    assert np.all(upper_se == rbm.log_partition_stderr_) and np.all(lower_se > 0)
    assert np.mean(upper - lower) < 0.2
    np.testing.assert_allclose(upper, rbm.score_samples(X[:30]), rtol=1e-12)


def test_bounds_close_in_on_the_exact_value_as_the_betas_grow():
    """A sharply multimodal RBM: five betas leave a wide bracket, or an inverted one (RAISE then
    bounds the annealing model, not the RBM), and say so; 4,000 a narrow one around the exact
    value."""
    rbm, X = trained_rbm(0, n_components=10, max_iter=60)
    rows = X[:40]
    exact = exact_scores(rbm, rows)
    rbm.set_params(log_partition="ais", n_ais_betas=5)
    with pytest.warns(UserWarning, match="has not converged"):
        lower, upper = rbm.log_likelihood_bounds(rows, n_runs=20)
    assert np.abs(upper - lower).mean() > 0.5
    rbm.set_params(n_ais_betas=4000)
    lower, upper = rbm.log_likelihood_bounds(rows, n_runs=20)
    assert np.abs(upper - lower).mean() < 0.05
    # AIS's side converges faster than RAISE's (measured: 0.003 and 0.043 nats at 4,000 betas)
    assert np.abs(upper - exact).mean() < 0.02 and np.abs(lower - exact).mean() < 0.06


def test_bounds_with_exact_log_partition_and_their_figures():
    rbm, X = trained_rbm(1)  # log_partition="auto": 8 hidden units are enumerated
    lower, upper, lower_se, upper_se = rbm.log_likelihood_bounds(X[:5], n_runs=4, n_betas=300,
                                                                 return_stderr=True)
    np.testing.assert_allclose(upper, rbm.score_samples(X[:5]), rtol=1e-12)
    assert np.all(upper_se == 0.0)
    assert np.all(np.abs(lower - upper) < 4 * lower_se + 0.05)
    one = rbm.log_likelihood_bounds(X[:5], n_runs=1, n_betas=50, return_stderr=True)
    assert np.all(np.isnan(one[2]))  # no standard error from one run


def test_raise_warns_when_its_weights_spread():
    rbm, X = trained_rbm(0)
    rbm.set_params(log_partition="ais", n_ais_betas=1000)
    with pytest.warns(UserWarning, match="RAISE has not converged.*Increase n_betas"):
        rbm.log_likelihood_bounds(X[:30], n_runs=10, n_betas=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rbm.log_likelihood_bounds(X[:30], n_runs=10, n_betas=1000)


def test_bounds_are_reproducible_and_rows_independent():
    rbm, X = trained_rbm(2, log_partition="ais", n_ais_betas=200)
    twin = BernoulliRBMStack(**rbm.get_params()).fit(X)
    a = rbm.log_likelihood_bounds(X[:12], n_runs=3)
    b = twin.log_likelihood_bounds(X[:12], n_runs=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    part = rbm.log_likelihood_bounds(X[4:7], n_runs=3)
    for x, y in zip(part, a):
        np.testing.assert_allclose(x, y[4:7], rtol=1e-12)
    # sparse and float32 input
    sparse = rbm.log_likelihood_bounds(sp.csr_matrix(X[:12]), n_runs=3)
    np.testing.assert_allclose(sparse[0], a[0], rtol=1e-12)
    single = rbm.log_likelihood_bounds(X[:12].astype(np.float32), n_runs=3)
    assert all(x.dtype == np.float32 for x in single)
    np.testing.assert_allclose(single[1], a[1], rtol=1e-5)


@pytest.mark.filterwarnings("ignore:RAISE has not converged")
def test_scoring_leaves_the_fitted_model_unchanged():
    rbm, X = trained_rbm(0, log_partition="ais", n_ais_betas=100)
    module = rbm.net_.module_
    before = (copy.deepcopy(module.state_dict()), module._generator.get_state().clone(),
              rbm._shuffle_generator.get_state().clone(), [c.copy() for c in rbm.coefs_])
    first = rbm.score_samples(X[:5])
    rbm.log_likelihood_bounds(X[:5], n_runs=2)
    after = (module.state_dict(), module._generator.get_state(), rbm._shuffle_generator.get_state(),
             rbm.coefs_)
    for key, value in before[0].items():
        if key.endswith("_extra_state"):  # the persistent chain and the Gibbs generator's state
            assert (value["chain"] is None) == (after[0][key]["chain"] is None)
            continue
        np.testing.assert_array_equal(value.cpu().numpy(), after[0][key].cpu().numpy())
    assert np.array_equal(before[1].numpy(), after[1].numpy())
    assert np.array_equal(before[2].numpy(), after[2].numpy())
    for x, y in zip(before[3], after[3]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(first, rbm.score_samples(X[:5]))


def test_a_stack_has_no_bounds():
    stack = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(5,))
    assert not hasattr(stack, "log_likelihood_bounds")
    assert hasattr(BernoulliRBMStack(n_components=3), "log_likelihood_bounds")
    X = prototypes(0, n_rows=60)
    stack.set_params(max_iter=1, random_state=0, device="cpu").fit(X)
    with pytest.raises(AttributeError) as error:
        stack.log_likelihood_bounds(X)
    assert "single RBM" in str(error.value.__cause__)
    assert "importance-weighted lower bound" in str(error.value.__cause__)


# ------------------------------------------------------------- log Z that checks itself
def test_auto_grows_the_schedule_until_two_agree(monkeypatch):
    """With enumeration switched off, "auto" runs n/2, n, 2n, ... betas until two successive
    estimates agree, and records them; the answer is within the tolerance of exact log Z."""
    rbm, X = trained_rbm(1)
    exact = rbm.log_partition_
    monkeypatch.setattr(_rbm, "MAX_EXACT_UNITS", 4)
    rbm.set_params(log_partition="auto", n_ais_betas=100)
    info = rbm.log_partition_info_
    assert info["method"] == "ais" and info["agreed"] is True
    sizes = [s["n_betas"] for s in info["schedules"]]
    assert sizes[:2] == [50, 100] and all(b == 2 * a for a, b in zip(sizes[1:], sizes[2:]))
    assert info["n_betas"] == sizes[-1] and info["log_partition"] == info["schedules"][-1]["log_partition"]
    assert info["difference"] <= info["tolerance"] + 2 * info["difference_stderr"]
    assert info["tolerance"] == _rbm.AIS_TOLERANCE
    assert abs(info["log_partition"] - exact) < _rbm.AIS_TOLERANCE + 3 * info["stderr"]
    for schedule in info["schedules"]:
        assert {"log_partition", "stderr", "log_weight_std", "effective_sample_size",
                "seconds"} <= set(schedule)
    # each schedule is cached and is what log_partition="ais" gives at that size
    rbm.set_params(log_partition="ais", n_ais_betas=sizes[-1])
    assert rbm.log_partition_ == info["log_partition"]
    assert rbm.log_partition_info_["agreed"] is None


def test_auto_warns_with_its_figures_when_the_budget_runs_out(monkeypatch):
    rbm, X = trained_rbm(0, n_components=10, max_iter=60)
    monkeypatch.setattr(_rbm, "MAX_EXACT_UNITS", 4)
    rbm.set_params(n_ais_betas=6)
    with pytest.warns(UserWarning, match=r"AIS has not converged within its budget.*with 48 "
                                         r"betas.*with 96 differ by .* nats"):
        log_z = rbm.log_partition_
    info = rbm.log_partition_info_
    assert info["agreed"] is False and [s["n_betas"] for s in info["schedules"]] == [3, 6, 12, 24, 48, 96]
    assert log_z == info["schedules"][-1]["log_partition"]


def test_ais_fixed_schedule_warns_on_a_small_effective_sample_size():
    rbm, X = trained_rbm(0, n_components=16, max_iter=60)  # 5 betas: 1.6 effective runs of 100
    rbm.set_params(log_partition="ais", n_ais_betas=5)
    with pytest.warns(UserWarning, match="AIS has not converged: the effective sample size"):
        rbm.score_samples(X[:3])
    info = rbm.log_partition_info_
    assert len(info["schedules"]) == 1 and info["n_betas"] == 5


@pytest.mark.parametrize("params, match", [
    ({"n_ais_betas": 2}, "n_ais_betas"),
    ({"n_ais_runs": 1}, "n_ais_runs"),
    ({"n_ais_betas": 10.5}, "n_ais_betas"),
    ({"log_partition": "sampled"}, "log_partition"),
])
def test_scoring_parameters_checked_where_used(params, match):
    rbm, X = trained_rbm(0, max_iter=1)
    rbm.set_params(**params)
    with pytest.raises(ValueError, match=match):
        rbm.score_samples(X[:2])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_runs": 0}, "n_runs"), ({"n_betas": 2}, "n_betas"), ({"return_stderr": "yes"}, "return_stderr"),
])
def test_bounds_arguments_checked(kwargs, match):
    rbm, X = trained_rbm(0, max_iter=1)
    with pytest.raises(ValueError, match=match):
        rbm.log_likelihood_bounds(X[:2], **kwargs)


# ------------------------------------------------------------------- progress bars
def test_verbose_scoring_shows_progress_bars(capsys):
    rbm, X = trained_rbm(0, max_iter=2, log_partition="ais", n_ais_betas=64)
    capsys.readouterr()
    rbm.score_samples(X[:3])
    rbm.log_likelihood_bounds(X[:3], n_runs=2, n_betas=40)
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out == ""
    rbm.set_params(verbose=1, n_ais_betas=96)  # a new schedule: computed, with a bar
    rbm.score_samples(X[:3])
    rbm.log_likelihood_bounds(X[:3], n_runs=2, n_betas=40)
    err = capsys.readouterr().err
    assert "AIS log Z, 96 betas" in err and "96/96" in err
    assert "RAISE, 40 betas" in err and "40/40" in err
