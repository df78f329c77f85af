"""The training path as a user meets it: Ctrl-C, failed calls, divergence, warm starts, skorch's
own callbacks, progress, saving and loading, memory, and parameters changed after a fit."""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    ProgressBar,
)

from sklearn_ae import (
    AutoencoderTransformer,
    BernoulliRBMStack,
    DivergenceError,
    SparseAutoencoder,
    VAETransformer,
)

needs_sigint = pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                                  reason="SIGINT is not delivered as KeyboardInterrupt here")


@pytest.fixture
def X():
    return np.random.RandomState(0).randn(120, 6).astype(np.float32)


@pytest.fixture
def X01():
    return (np.random.RandomState(1).rand(120, 8) < 0.4).astype(np.float32)


def small(cls, **params):
    base = dict(n_components=2, hidden_layer_sizes=(4,), max_iter=5, random_state=0, device="cpu")
    if cls is VAETransformer:
        base["n_importance_samples"] = 5
    if cls is BernoulliRBMStack:
        base.update(n_components=3, hidden_layer_sizes=(), batch_size=10, learning_rate=0.05)
    return cls(**{**base, **params})


class SigintAt(Callback):
    """Press Ctrl-C (a real SIGINT to this process) at a given epoch and batch of training."""

    def __init__(self, epoch=1, batch=None):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, net, training=None, **kwargs):
        if training and self.batch is not None and len(net.history) == self.epoch \
                and len(net.history[-1]["batches"]) == self.batch:
            signal.raise_signal(signal.SIGINT)

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and len(net.history) == self.epoch:
            signal.raise_signal(signal.SIGINT)


class RaiseAt(Callback):
    def __init__(self, exc, batch=2):
        self.exc, self.batch = exc, batch

    def on_batch_end(self, net, training=None, **kwargs):
        if training and len(net.history[-1]["batches"]) == self.batch:
            raise self.exc


def scores(est, X):
    return est.score_samples(X)


# ------------------------------------------------------------------------------------ Ctrl-C
@needs_sigint
def test_ctrl_c_in_the_first_epoch_leaves_a_consistent_usable_model(X):
    """Was: skorch raised KeyError: 'train_loss' and left a half-fitted estimator."""
    ae = small(AutoencoderTransformer, batch_size=10, callbacks=[SigintAt(epoch=1, batch=3)])
    with pytest.warns(UserWarning, match="interrupted"):
        ae.fit(X)
    check_is_fitted(ae)
    assert ae.n_iter_ == len(ae.loss_curve_) == 0
    assert np.all(np.isfinite(ae.score_samples(X)))


@needs_sigint
def test_ctrl_c_mid_epoch_counts_only_whole_epochs(X):
    """Was: n_iter_ == len(loss_curve_) + 1 after a Ctrl-C in the middle of an epoch."""
    ae = small(AutoencoderTransformer, batch_size=10, max_iter=50, tol=0.0,
               callbacks=[SigintAt(epoch=3, batch=4)])
    with pytest.warns(UserWarning, match="after 2 complete epoch"):
        ae.fit(X)
    assert ae.n_iter_ == len(ae.loss_curve_) == 2 == len(ae.net_.history)
    ae.set_params(callbacks=None).partial_fit(X)
    assert ae.n_iter_ == len(ae.loss_curve_) == 3


@needs_sigint
def test_one_ctrl_c_stops_every_layer_of_a_stack(X01):
    """Was: the next layer trained on after a Ctrl-C in the first."""
    stack = BernoulliRBMStack(n_components=2, hidden_layer_sizes=(5,), max_iter=20, random_state=0,
                              device="cpu", callbacks=[SigintAt(epoch=2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack.fit(X01)
    messages = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert len(messages) == 1 and "after 2, 0 complete epoch(s) of its 2 layers" in messages[0]
    assert [len(c) for c in stack.loss_curves_] == [2, 0]
    assert stack.transform(X01).shape == (len(X01), 2)
    assert np.all(np.isfinite(stack.score_samples(X01)))


@needs_sigint
def test_one_ctrl_c_in_pretraining_skips_the_fine_tuning(X01):
    """Was: fine-tuning ran on after a Ctrl-C in the RBM pretraining."""
    stack = BernoulliRBMStack(max_iter=20, batch_size=20, random_state=0, device="cpu",
                              callbacks=[SigintAt(epoch=2)])
    ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), activation="logistic",
                                likelihood="bernoulli", pretraining=stack, max_iter=50, random_state=0,
                                device="cpu")
    with pytest.warns(UserWarning, match="interrupted"):
        ae.fit(X01)
    assert ae.n_iter_ == len(ae.loss_curve_) == 0
    assert [len(c) for c in ae.pretrained_.loss_curves_] == [2, 0]
    assert ae.transform(X01).shape == (len(X01), 2)


# ----------------------------------------------------------------- a failed call changes nothing
@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer, BernoulliRBMStack])
@pytest.mark.parametrize("exc", [MemoryError("out of memory"), RuntimeError("a callback failed")])
def test_a_failed_refit_changes_nothing(cls, exc, X, X01):
    """Was: seeds were redrawn (VAE and RBM scores moved) by a refit that failed."""
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, batch_size=10).fit(data)
    before, seeds = scores(est, data), {k: v for k, v in vars(est).items() if "seed" in k}
    est.set_params(callbacks=[RaiseAt(exc)], random_state=1)
    with pytest.raises(type(exc), match=str(exc)):
        est.fit(data)
    assert {k: v for k, v in vars(est).items() if "seed" in k} == seeds
    np.testing.assert_array_equal(scores(est, data), before)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, SparseAutoencoder, VAETransformer, BernoulliRBMStack])
def test_a_partial_fit_that_fails_midway_keeps_the_model(cls, X, X01):
    """Was: half-updated weights and a stale n_iter_ after a partial_fit that failed."""
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, batch_size=10).fit(data)
    state = [{k: v.clone() for k, v in net.module_.state_dict().items() if torch.is_tensor(v)}
             for net in getattr(est, "nets_", [est.net_])]
    n_iter, before = est.n_iter_, scores(est, data)
    est.set_params(callbacks=[RaiseAt(RuntimeError("boom"), batch=3)])
    with pytest.raises(RuntimeError, match="boom"):
        est.partial_fit(data)
    assert est.n_iter_ == n_iter == len(est.loss_curve_)
    for net, saved in zip(getattr(est, "nets_", [est.net_]), state):
        for k, v in net.module_.state_dict().items():
            if torch.is_tensor(v):
                assert torch.equal(v, saved[k]), k
    np.testing.assert_array_equal(scores(est, data), before)
    est.set_params(callbacks=None).partial_fit(data)
    assert est.n_iter_ == n_iter + 1


def test_a_failed_first_fit_leaves_the_estimator_unfitted(X):
    ae = small(AutoencoderTransformer, batch_size=10, callbacks=[RaiseAt(ValueError("nope"))])
    with pytest.raises(ValueError, match="nope"):
        ae.fit(X)
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(ae))
    with pytest.raises(Exception, match="not fitted"):
        ae.transform(X)


# ------------------------------------------------------------------------------- divergence
def test_finite_divergence_of_an_autoencoder_is_caught(X):
    """Was: learning_rate_init=1e10 ended with a training loss of 4.5e20 and no error."""
    with pytest.raises(DivergenceError, match="Lower learning_rate"):
        AutoencoderTransformer(learning_rate_init=1e10, random_state=0, device="cpu").fit(X)


def test_finite_divergence_of_an_rbm_is_caught(X01):
    """Was: learning_rate=1e4 trained silently to a model scoring -8,775 against -3.4."""
    with pytest.raises(DivergenceError, match="Lower learning_rate"):
        BernoulliRBMStack(n_components=16, learning_rate=1e4, random_state=0, device="cpu").fit(X01)


# ----------------------------------------------------------------------------- warm starts
@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer, SparseAutoencoder, BernoulliRBMStack])
def test_warm_start_with_another_architecture_trains_a_new_network(cls, X, X01):
    """Was: the old 4-unit network was kept, then transform failed with a broadcast error."""
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, n_components=4).fit(data)
    with pytest.warns(UserWarning, match="n_components .4 -> 6."):
        est.set_params(warm_start=True, n_components=6).fit(data)
    assert est.transform(data).shape == (len(data), 6)
    assert est.inverse_transform(est.transform(data)).shape == data.shape


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer, BernoulliRBMStack])
def test_inference_reads_the_fitted_network_and_partial_fit_refuses_another(cls, X, X01):
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, n_components=4).fit(data)
    Z = est.transform(data)
    est.set_params(n_components=6)
    np.testing.assert_array_equal(est.transform(data), Z)  # the fitted network, until refitted
    assert est.get_feature_names_out().shape == (4,)
    with pytest.raises(ValueError, match="partial_fit cannot continue.*n_components"):
        est.partial_fit(data)
    np.testing.assert_array_equal(est.transform(data), Z)


# -------------------------------------------------------------------------- skorch callbacks
@pytest.mark.parametrize("early_stopping", [False, True])
def test_skorchs_early_stopping_works_and_is_reported_for_what_it_is(X, early_stopping):
    """Was: KeyError: 'valid_loss' without early_stopping=True, and a stop reported as an
    interruption."""
    ae = AutoencoderTransformer(n_components=2, max_iter=500, tol=0.0, early_stopping=early_stopping,
                                callbacks=[EarlyStopping(patience=2, threshold=10.0, sink=lambda *a: None)],
                                random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither "interrupted" nor a ConvergenceWarning
        ae.fit(X)
    assert 3 <= ae.n_iter_ < 500
    assert "valid_loss" in ae.net_.history[-1]


def test_checkpoint_lr_scheduler_clipping_and_progress_bar_work(X, tmp_path):
    callbacks = [Checkpoint(dirname=str(tmp_path)), LRScheduler(policy="StepLR", step_size=2),
                 GradientNormClipping(gradient_clip_value=1.0), ProgressBar()]
    for early_stopping in (False, True):
        ae = AutoencoderTransformer(n_components=2, max_iter=4, early_stopping=early_stopping,
                                    callbacks=callbacks, random_state=0, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ae.fit(X)
        assert ae.n_iter_ == 4
        assert (tmp_path / "params.pt").exists()
        assert ae.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.1 ** 2)


@pytest.mark.parametrize("name", ["convergence", "divergence_guard", "progress", "epoch_log"])
def test_a_users_callback_name_never_collides_with_ours(X, name, epoch_counter):
    ae = small(AutoencoderTransformer, tol=0.0, callbacks=[(name, epoch_counter())]).fit(X)
    assert dict(ae.net_.callbacks_)[name].epochs == 5


def test_skorchs_history_keeps_every_batch(X):
    """Was: the per-batch history was emptied."""
    ae = small(AutoencoderTransformer, batch_size=50, tol=0.0).fit(X)
    assert [len(row["batches"]) for row in ae.net_.history] == [3] * 5
    assert ae.net_.history[-1, "batches", -1, "train_batch_size"] == 20


def test_callbacks_set_after_a_fit_are_used(X, epoch_counter):
    """Was: set_params(callbacks=...) after a fit was ignored by later training."""
    ae = small(AutoencoderTransformer).fit(X)
    ae.set_params(callbacks=[("count", epoch_counter())]).partial_fit(X)
    assert dict(ae.net_.callbacks_)["count"].epochs == 1


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_save_params_and_load_params_restore_what_scoring_needs(cls, X, tmp_path):
    """Was: load_params restored the weights but not noise_variance_, so score silently differed."""
    trained = small(cls, max_iter=20).fit(X)
    trained.net_.save_params(f_params=str(tmp_path / "w.pt"))
    other = small(cls, random_state=5, max_iter=2).fit(X * 3)
    other.net_.load_params(f_params=str(tmp_path / "w.pt"))
    np.testing.assert_allclose(other.score_samples(X), trained.score_samples(X), rtol=1e-6)
    np.testing.assert_allclose(other.noise_variance_, trained.noise_variance_, rtol=1e-6)


def test_rbm_save_params_restores_its_scoring_state(X01, tmp_path):
    trained = BernoulliRBMStack(n_components=5, max_iter=10, random_state=0, device="cpu").fit(X01)
    trained.net_.save_params(f_params=str(tmp_path / "w.pt"))
    other = BernoulliRBMStack(n_components=5, max_iter=1, random_state=3, device="cpu").fit(X01[:30])
    other.score_samples(X01)  # its own log Z, computed and cached
    other.net_.load_params(f_params=str(tmp_path / "w.pt"))
    np.testing.assert_allclose(other.score_samples(X01), trained.score_samples(X01), rtol=1e-6)


def test_loss_and_best_loss_as_mlpregressor_has_them(X):
    ae = small(AutoencoderTransformer, tol=0.0).fit(X)
    assert ae.loss_ == ae.loss_curve_[-1] and ae.best_loss_ == min(ae.loss_curve_)
    ae = small(AutoencoderTransformer, early_stopping=True).fit(X)
    assert ae.loss_ == ae.loss_curve_[-1] and ae.best_loss_ is None
    assert ae.best_validation_score_ == max(ae.validation_scores_)


# --------------------------------------------------------------------------------- progress
def test_verbose_1_is_one_progress_bar_and_2_adds_epoch_lines(X, capsys):
    small(AutoencoderTransformer, max_iter=3, tol=0.0, verbose=1).fit(X)
    out, err = capsys.readouterr()
    assert out == "" and "AutoencoderTransformer" in err and "loss=" in err and "3/3" in err
    small(AutoencoderTransformer, max_iter=3, tol=0.0, verbose=2).fit(X)
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 3 and "3/3" in err


def test_verbose_importance_weighted_scoring_shows_a_bar(X, capsys):
    vae = small(VAETransformer, verbose=1).fit(X)
    capsys.readouterr()
    vae.score_samples(X)
    err = capsys.readouterr().err
    assert "importance-weighted log-likelihood, K=5" in err and "120/120" in err
    vae.set_params(verbose=0).score_samples(X)
    assert capsys.readouterr().err == ""


def test_a_stack_shows_one_bar_over_its_layers(X01, capsys):
    BernoulliRBMStack(n_components=2, hidden_layer_sizes=(4,), max_iter=3, verbose=1, random_state=0,
                      device="cpu").fit(X01)
    err = capsys.readouterr().err
    assert "6/6" in err


# ----------------------------------------------------------------------------------- memory
def _peak_rss_during(fn):
    """Peak resident memory (bytes) above the level at the start, polled every millisecond."""
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    base, peak, done = rss(), [0], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], rss() - base)
            time.sleep(0.001)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return peak[0]


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_rbm_fit_on_sparse_input_densifies_a_batch_at_a_time():
    """Was: 0.9 MB of CSR cost 539 MB (the whole matrix densified)."""
    X = sp.random(30000, 4500, density=0.0007, format="csr", random_state=0, dtype=np.float32)
    X.data[:] = 1.0
    rbm = BernoulliRBMStack(n_components=8, batch_size=100, max_iter=1, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peak = _peak_rss_during(lambda: rbm.fit(X))
    assert peak < 100 * 2**20, peak / 2**20  # the dense matrix would be 540 MB


# ---------------------------------------------------------------- parameters used after a fit
@pytest.mark.parametrize("cls, param, value, method", [
    (VAETransformer, "n_importance_samples", 0, "score_samples"),
    (BernoulliRBMStack, "n_ais_betas", -3, "score_samples"),
    (BernoulliRBMStack, "n_ais_runs", 1, "score_samples"),
    (BernoulliRBMStack, "n_importance_samples", 0, "score_samples"),
])
def test_parameters_changed_after_a_fit_are_validated_where_they_are_used(cls, param, value, method, X, X01):
    """Was: n_importance_samples=0 gave a ZeroDivisionError, n_ais_betas=-3 was accepted."""
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, **({"hidden_layer_sizes": (4,)} if cls is BernoulliRBMStack else {})).fit(data)
    est.set_params(**{param: value, "log_partition": "ais"} if cls is BernoulliRBMStack and "ais" in param
                   else {param: value})
    with pytest.raises(ValueError, match=param):
        getattr(est, method)(data)


def test_the_fitted_observation_model_scores_until_a_refit(X):
    ae = small(AutoencoderTransformer).fit(X)
    before = ae.score_samples(X)
    ae.set_params(likelihood="bernoulli")  # X is not in [0, 1]: only a refit would object
    np.testing.assert_array_equal(ae.score_samples(X), before)
    with pytest.raises(ValueError, match="MinMaxScaler"):
        ae.fit(X)
    np.testing.assert_array_equal(ae.score_samples(X), before)


def test_huge_layers_and_grad_tensors_get_clear_errors(X):
    with pytest.raises(ValueError, match="Could not allocate"):
        AutoencoderTransformer(n_components=2, hidden_layer_sizes=(2**40,), device="cpu").fit(X)
    Xt = torch.from_numpy(X).requires_grad_()
    with pytest.raises(ValueError, match="requires grad"):
        AutoencoderTransformer(n_components=2, max_iter=2, device="cpu").fit(Xt)
    ae = small(AutoencoderTransformer).fit(X)
    with pytest.raises(ValueError, match="requires grad"):
        ae.transform(Xt)
    np.testing.assert_allclose(ae.transform(Xt.detach()), ae.transform(X), rtol=1e-5)


# ------------------------------------------------------------- found by attacking the above
class StopAt(Callback):
    """skorch's way for a callback to end training: raise KeyboardInterrupt (here mid-epoch)."""

    def __init__(self, batch=2):
        self.batch = batch

    def on_batch_end(self, net, training=None, **kwargs):
        if training and len(net.history[-1]["batches"]) == self.batch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer, BernoulliRBMStack])
def test_a_callbacks_stop_mid_epoch_drops_that_epoch(cls, X, X01):
    data = X01 if cls is BernoulliRBMStack else X
    est = small(cls, batch_size=10, callbacks=[StopAt()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a callback's stop is no interruption
        est.fit(data)
        assert est.n_iter_ == len(est.loss_curve_) == 0
        est.set_params(callbacks=None).partial_fit(data)
        est.set_params(callbacks=[StopAt()]).partial_fit(data)
    assert est.n_iter_ == len(est.loss_curve_) == 1 == len(est.net_.history)


@pytest.mark.parametrize("callback", [lambda: EarlyStopping(sink=lambda *a: None),
                                      lambda: Checkpoint(dirname=None, monitor="valid_loss_best")])
def test_validation_callbacks_work_with_partial_fit_too(X, callback, tmp_path):
    ae = small(AutoencoderTransformer, callbacks=[callback()])
    if isinstance(ae.callbacks[0], Checkpoint):
        ae.callbacks[0].dirname = str(tmp_path)
    ae.fit(X)
    ae.partial_fit(X)
    assert "valid_loss" in ae.net_.history[-1]


def test_a_stack_refuses_validation_callbacks_clearly(X01):
    stack = BernoulliRBMStack(n_components=2, max_iter=2, device="cpu", callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="monitor='train_loss'"):
        stack.fit(X01)
    assert not hasattr(stack, "nets_")


def test_rbm_divergence_well_below_overflow_is_caught():
    """Was: learning_rate=100 trained silently to -105 nats (lr 0.05: -7.3)."""
    X = (np.random.RandomState(0).rand(300, 12) < 0.3).astype(np.float32)
    with pytest.raises(DivergenceError, match="training loss reached"):
        BernoulliRBMStack(n_components=4, learning_rate=100, random_state=0, device="cpu").fit(X)
    BernoulliRBMStack(n_components=4, learning_rate=1.0, random_state=0, device="cpu").fit(X)


@pytest.mark.parametrize("param, value", [("learning_rate_init", -1.0), ("batch_size", 0), ("alpha", -1.0)])
def test_partial_fit_validates_parameters_set_after_a_fit(X, param, value):
    ae = small(AutoencoderTransformer).fit(X)
    ae.set_params(**{param: value})
    with pytest.raises(ValueError, match=param):
        ae.partial_fit(X)


def test_partial_fit_validates_rbm_parameters(X01):
    rbm = small(BernoulliRBMStack).fit(X01)
    rbm.set_params(n_gibbs_steps=0)
    with pytest.raises(ValueError, match="n_gibbs_steps"):
        rbm.partial_fit(X01)


def test_a_failed_fit_leaves_a_random_state_instance_as_it_was(X):
    def fit(fail_first):
        rs = np.random.RandomState(0)
        ae = small(AutoencoderTransformer, batch_size=10, random_state=rs)
        if fail_first:
            ae.set_params(callbacks=[RaiseAt(RuntimeError("boom"))])
            with pytest.raises(RuntimeError):
                ae.fit(X)
            ae.set_params(callbacks=None)
        return ae.fit(X).transform(X)

    np.testing.assert_array_equal(fit(True), fit(False))


def test_warnings_point_at_the_users_line(X):
    with pytest.warns(ConvergenceWarning) as caught:
        small(AutoencoderTransformer, max_iter=2, tol=0.0).fit(X)
    assert caught[0].filename == __file__
    ae = small(AutoencoderTransformer, n_components=2).fit(X)
    with pytest.warns(UserWarning, match="n_components") as caught:
        ae.set_params(warm_start=True, n_components=3).fit(X)
    assert [w.filename for w in caught if "n_components" in str(w.message)] == [__file__]


@needs_sigint
def test_ctrl_c_after_training_finishes_the_statistics_and_keeps_the_model(X, monkeypatch):
    """Was: a Ctrl-C in the noise-variance pass after training rolled the whole fit back."""
    import sklearn_ae._base as base

    moments = base.column_moments

    def pressed(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # deferred: the statistics still complete
        return moments(*args, **kwargs)

    monkeypatch.setattr(base, "column_moments", pressed)
    ae = small(AutoencoderTransformer, tol=0.0)
    with pytest.warns(UserWarning, match="interrupted"):
        ae.fit(X)
    assert ae.n_iter_ == len(ae.loss_curve_) == 5
    assert np.all(np.isfinite(ae.score_samples(X)))


@needs_sigint
def test_ctrl_c_between_the_layers_of_a_stack(X01, monkeypatch):
    """Was: a Ctrl-C while the first layer's output was passed up discarded the whole fit."""
    up = BernoulliRBMStack._up

    def pressed(module, data, device):
        signal.raise_signal(signal.SIGINT)
        return up(module, data, device)

    monkeypatch.setattr(BernoulliRBMStack, "_up", staticmethod(pressed))
    stack = BernoulliRBMStack(n_components=2, hidden_layer_sizes=(5,), max_iter=3, random_state=0, device="cpu")
    with pytest.warns(UserWarning, match="interrupted"):
        stack.fit(X01)
    assert [len(c) for c in stack.loss_curves_] == [3, 0]
    assert stack.transform(X01).shape == (len(X01), 2)


@needs_sigint
def test_a_users_own_sigint_handler_decides(X):
    calls = []
    previous = signal.signal(signal.SIGINT, lambda *args: calls.append(1))  # does not raise
    try:
        ae = small(AutoencoderTransformer, batch_size=10, tol=0.0, callbacks=[SigintAt(epoch=2, batch=1)])
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*interrupted")
            ae.fit(X)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == [1] and ae.n_iter_ == 5


def test_callbacks_are_used_as_given(X):
    """Was: callbacks were deep-copied, so a logger wrote nowhere and one holding a lock failed."""
    class Log(Callback):
        def __init__(self, sink):
            self.sink, self.lock = sink, threading.Lock()

        def on_epoch_end(self, net, **kwargs):
            with self.lock:
                self.sink.append(net.history[-1, "train_loss"])

    sink = []
    ae = small(AutoencoderTransformer, tol=0.0, callbacks=[Log(sink)]).fit(X)
    assert sink == ae.loss_curve_


def test_concurrent_fits_leave_torchs_thread_count_alone(X):
    before = torch.get_num_threads()
    threads = [threading.Thread(target=lambda: small(AutoencoderTransformer, max_iter=20).fit(X))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.get_num_threads() == before


def test_float32_tensors_give_float32(X):
    ae = small(AutoencoderTransformer).fit(X)
    assert ae.transform(torch.from_numpy(X)).dtype == np.float32


def test_huge_rbm_layers_get_a_clear_error(X01):
    with pytest.raises(ValueError, match="Could not allocate"):
        BernoulliRBMStack(n_components=10**12, device="cpu").fit(X01)


def test_rbm_save_params_restores_a_stacks_scores_and_weights(X01, tmp_path):
    trained = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), max_iter=5, random_state=0,
                                device="cpu").fit(X01)
    other = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), max_iter=1, random_state=4,
                              device="cpu").fit(X01[:40])
    other.score_samples(X01)
    for i, (a, b) in enumerate(zip(trained.nets_, other.nets_)):
        a.save_params(f_params=str(tmp_path / f"{i}.pt"))
        b.load_params(f_params=str(tmp_path / f"{i}.pt"))
    np.testing.assert_allclose(other.score_samples(X01), trained.score_samples(X01), rtol=1e-6)
    for a, b in zip(other.coefs_, trained.coefs_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- the RBM as BernoulliRBM
def test_a_single_rbm_has_bernoulli_rbms_attributes_and_gibbs(X01):
    from sklearn.neural_network import BernoulliRBM

    ours = BernoulliRBMStack(n_components=5, max_iter=3, random_state=0, device="cpu").fit(X01)
    theirs = BernoulliRBM(n_components=5, n_iter=3, random_state=0).fit(X01)
    for name in ("components_", "intercept_hidden_", "intercept_visible_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape
    np.testing.assert_array_equal(ours.components_, ours.coefs_[0].T)
    v = ours.gibbs(X01[:7])
    assert v.shape == theirs.gibbs(X01[:7]).shape == (7, 8) and v.dtype == bool
    assert not np.array_equal(ours.gibbs(X01), ours.gibbs(X01))  # the chain of draws moves on
    again = BernoulliRBMStack(n_components=5, max_iter=3, random_state=0, device="cpu").fit(X01)
    np.testing.assert_array_equal(again.gibbs(X01[:7]), v)  # seeded at fit
    stack = BernoulliRBMStack(n_components=2, hidden_layer_sizes=(4,), max_iter=1, device="cpu").fit(X01)
    assert not hasattr(stack, "components_") and not hasattr(stack, "gibbs")


def test_the_default_learning_rate_decays_linearly_over_a_fit(X01):
    class Rates(Callback):
        def initialize(self):
            self.rates = []
            return self

        def on_epoch_end(self, net, **kwargs):
            self.rates.append(net.optimizer_.param_groups[0]["lr"])

    rbm = BernoulliRBMStack(n_components=3, max_iter=4, random_state=0, device="cpu",
                            callbacks=[("rates", Rates())]).fit(X01)
    np.testing.assert_allclose(dict(rbm.net_.callbacks_)["rates"].rates, [0.1, 0.075, 0.05, 0.025])
    assert rbm.net_.optimizer_.param_groups[0]["lr"] == 0.1
    rbm.set_params(learning_rate_schedule="constant").fit(X01)
    np.testing.assert_allclose(dict(rbm.net_.callbacks_)["rates"].rates, [0.1] * 4)
