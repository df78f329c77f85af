"""CUDA-graph training (``_graphs``) and the ``precision`` setting.

On the CPU the graph's bookkeeping runs with a stand-in for ``torch.cuda`` whose "graph" reruns
the step on the static batch: warmup, capture, replay, the eager last batch, recapture when the
learning rate changes, generators handed to the graph, a capture that fails. The tests named
``cuda`` run the real capture and skip without CUDA.
"""

import contextlib
import pickle
import signal
import warnings

import numpy as np
import pytest
import torch

from sklearn_ae import AutoencoderTransformer, BernoulliRBMStack, SparseAutoencoder, VAETransformer
from sklearn_ae import _engine, _graphs

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class _Stream:
    def wait_stream(self, other):
        pass


class _RerunGraph:
    def __init__(self, step, loss):
        self.step, self.loss = step, loss

    def replay(self):
        self.loss.copy_(self.step()["loss"].detach())


class RerunBackend:
    """``torch.cuda`` for the CPU: capture runs the step once, replay runs it again on the static
    batch and writes its loss where the captured one was."""

    needs_capturable = False
    capture_runs_step = True

    def __init__(self, fail=False):
        self.fail = fail
        self.registered = []

    def stream(self):
        return _Stream()

    current_stream = stream

    def use_stream(self, stream):
        return contextlib.nullcontext()

    def record_stream(self, tensor, stream):
        pass

    def capture(self, generators, stream, step):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.registered.append(list(generators))
        out = step()
        return _RerunGraph(step, out["loss"].detach()), out


@pytest.fixture
def rerun(monkeypatch):
    """Fits on the CPU go through ``GraphedStep`` with ``RerunBackend``; yields the steps made."""
    made = []
    real = _graphs.graphed_step

    def graphed_step(net, device, per_batch_callbacks):
        step = real(net, device, per_batch_callbacks, backend=made_backend[0])
        if step is not None:
            made.append(step)
        return step

    made_backend = [RerunBackend()]
    monkeypatch.setattr(_graphs, "graphed_step", graphed_step)
    yield made, made_backend


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    return rng.rand(230, 12).astype(np.float32)


def _same_fit(make, X, rerun, expect_captures):
    made, _ = rerun
    graphed = make().fit(X)
    steps = list(made)
    made.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(_graphs.ENVIRONMENT_SWITCH, "0")
        eager = make().fit(X)
    assert made == []
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(graphed.score_samples(X), eager.score_samples(X), rtol=1e-5)
    assert len(steps) == 1
    assert steps[0].captures == expect_captures
    return steps[0], graphed


@pytest.mark.parametrize("make", [
    lambda: AutoencoderTransformer(n_components=3, hidden_layer_sizes=(8,), batch_size=32, max_iter=4,
                                   tol=0.0, random_state=0, device="cpu"),
    lambda: SparseAutoencoder(n_components=6, batch_size=32, max_iter=4, tol=0.0, random_state=0, device="cpu"),
    lambda: VAETransformer(n_components=2, hidden_layer_sizes=(8,), batch_size=32, max_iter=4, tol=0.0,
                           random_state=0, device="cpu", n_importance_samples=5),
], ids=["ae", "sparse", "vae"])
def test_replayed_steps_train_as_the_eager_loop(make, X, rerun):
    """Warmup, one capture, replays of every later full batch and the eager last batch (230 rows
    at 32: 7 full batches and one of 6) give the eager fit's losses and model."""
    step, fitted = _same_fit(make, X, rerun, expect_captures=1)
    assert step.replays == 4 * 7 - _graphs.WARMUP_STEPS - 1
    expected = [fitted.module_.training_generators(torch.device("cpu"))] if hasattr(
        fitted.module_, "training_generators") else [[]]
    assert rerun[1][0].registered == expected  # the VAE's noise generator, registered


def test_rbm_recaptures_when_the_learning_rate_decays(X, rerun):
    """BernoulliRBM's linear decay changes the learning rate every epoch, which a graph bakes
    in: one capture per epoch, the Gibbs generator registered each time, the eager fit's
    losses and weights."""
    make = lambda: BernoulliRBMStack(n_components=5, batch_size=32, max_iter=3, random_state=0, device="cpu",
                                     n_ais_runs=4, n_ais_betas=20, persistent=True)
    Xb = (X > 0.5).astype(np.float32)
    step, fitted = _same_fit(make, Xb, rerun, expect_captures=3)
    assert rerun[1][0].registered == [[fitted.module_.training_generators(torch.device("cpu"))[0]]] * 3
    # 7 full batches an epoch: 3 warmup steps, a capture and 3 replays; then after each change
    # one eager step (which would create any state the change reset), a capture and 5 replays
    assert step.replays == 3 + 5 + 5


def test_rbm_with_constant_rate_captures_once(X, rerun):
    make = lambda: BernoulliRBMStack(n_components=5, batch_size=32, max_iter=3, random_state=0, device="cpu",
                                     learning_rate_schedule="constant", n_ais_runs=4, n_ais_betas=20)
    _same_fit(make, (X > 0.5).astype(np.float32), rerun, expect_captures=1)


def test_a_setting_changed_between_epochs_is_captured_again(X, rerun):
    """A callback that anneals the VAE's beta at each epoch's end: the graph baked the old value
    in, so each epoch captures again, and training follows the eager loop."""
    from skorch.callbacks import Callback

    class Anneal(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.criterion_.beta = min(1.0, net.criterion_.beta + 0.25)

    make = lambda: VAETransformer(n_components=2, hidden_layer_sizes=(8,), batch_size=32, max_iter=3, tol=0.0,
                                  beta=0.25, random_state=0, device="cpu", n_importance_samples=5,
                                  callbacks=[Anneal()])
    _same_fit(make, X, rerun, expect_captures=3)


def test_capture_that_fails_is_a_clear_error_and_changes_nothing(X, rerun):
    """A failed capture stops the call with an error that names the switch, and the estimator is
    as it was (here: fitted before, continued by partial_fit)."""
    est = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(8,), batch_size=32, max_iter=3, tol=0.0,
                                 random_state=0, device="cpu").fit(X)
    before = est.transform(X)
    n_iter, curve = est.n_iter_, list(est.loss_curve_)
    rerun[1][0] = RerunBackend(fail=True)
    with pytest.raises(_graphs.CaptureError, match="capture of the training step failed.*SKLEARN_AE_CUDA_GRAPHS=0"):
        est.partial_fit(X)
    np.testing.assert_array_equal(est.transform(X), before)
    assert est.n_iter_ == n_iter and est.loss_curve_ == curve


def test_ctrl_c_during_capture_stays_a_ctrl_c(X, rerun):
    """Ending a capture that a Ctrl-C broke can itself fail; the fit must still stop as for a
    Ctrl-C (with its warning), not train on eagerly."""
    class Broken(RerunBackend):
        def capture(self, generators, stream, step):
            try:
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C does
            finally:
                raise RuntimeError("capture_end: operation failed due to a previous error during capture")

    rerun[1][0] = Broken()
    with pytest.warns(UserWarning, match="interrupted"):
        est = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(8,), batch_size=32, max_iter=3, tol=0.0,
                                     random_state=0, device="cpu").fit(X)
    assert est.n_iter_ == len(est.loss_curve_) == 0  # the capture was in the first epoch
    assert np.all(np.isfinite(est.transform(X)))


def test_per_batch_callbacks_keep_the_eager_loop(X, rerun, epoch_counter):
    """A callback with per-batch or gradient hooks would be skipped by a replay: no graph then;
    with an epoch-level callback the graph is used."""
    from skorch.callbacks import Callback, GradientNormClipping

    class Seen(Callback):
        def on_batch_end(self, net, **kwargs):
            self.n = getattr(self, "n", 0) + 1

    seen = Seen()
    common = dict(n_components=2, hidden_layer_sizes=(4,), batch_size=32, max_iter=2, tol=0.0, device="cpu")
    AutoencoderTransformer(callbacks=[seen], **common).fit(X)
    assert rerun[0] == [] and seen.n == 2 * 8
    AutoencoderTransformer(callbacks=[GradientNormClipping(1.0)], **common).fit(X)
    assert rerun[0] == []
    epochs = epoch_counter()
    AutoencoderTransformer(callbacks=[epochs], **common).fit(X)
    assert len(rerun[0]) == 1 and rerun[0][0].replays > 0 and epochs.epochs == 2


def test_graphs_not_set_up_where_they_cannot_serve(X):
    """The CPU, the switch, per-batch callbacks and step hooks each leave the eager loop."""
    net = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), max_iter=1, device="cpu").fit(X).net_
    cuda = torch.device("cuda", 0)
    assert isinstance(_graphs.graphed_step(net, cuda, False, backend=RerunBackend()), _graphs.GraphedStep)
    assert _graphs.graphed_step(net, torch.device("cpu"), False) is None
    assert _graphs.graphed_step(net, cuda, True) is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(_graphs.ENVIRONMENT_SWITCH, "0")
        assert not _graphs.enabled()
        assert _graphs.graphed_step(net, cuda, False) is None
    handle = net.optimizer_.register_step_post_hook(lambda *args: None)
    try:
        assert _graphs.has_step_hooks(net.optimizer_)
        assert _graphs.graphed_step(net, cuda, False) is None
    finally:
        handle.remove()
    assert not _graphs.has_step_hooks(net.optimizer_)


def test_net_pickles_without_the_training_calls_graph(X, rerun):
    """A Checkpoint during training pickles the net while a graph is held: the graph stays out."""
    est = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), batch_size=32, max_iter=1,
                                 device="cpu")
    est.fit(X)
    net = est.net_
    net._graphed, net._autocast = object(), torch.bfloat16
    state = net.__getstate__()
    assert "_graphed" not in state and "_autocast" not in state
    net._graphed = net._autocast = None
    pickle.loads(pickle.dumps(est))


# ----------------------------------------------------------------------------------- precision
def test_tf32_on_the_cpu_is_float32(X):
    common = dict(n_components=3, hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu")
    a = AutoencoderTransformer(**common).fit(X)
    b = AutoencoderTransformer(precision="tf32", **common).fit(X)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)


@pytest.mark.parametrize("make", [
    lambda **kw: AutoencoderTransformer(n_components=4, hidden_layer_sizes=(16,), max_iter=60, **kw),
    lambda **kw: VAETransformer(n_components=4, hidden_layer_sizes=(16,), max_iter=60, n_importance_samples=20,
                                **kw),
], ids=["ae", "vae"])
def test_bf16_training_keeps_held_out_likelihood(make, digits_split):
    """bfloat16 autocast in training: the model is still scored in float32 and its held-out
    log-likelihood stays near the float32-trained model's (within 1% on standardized digits)."""
    X_train, X_test, _, _ = digits_split
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    full = make(random_state=0, device="cpu").fit(X_train)
    half = make(random_state=0, device="cpu", precision="bf16").fit(X_train)
    assert half.net_.__dict__.get("_autocast") is None  # for the training call only
    assert not np.array_equal(half.loss_curve_, full.loss_curve_)  # it did train in bfloat16
    full_score, half_score = full.score(X_test), half.score(X_test)
    assert np.isfinite(half_score)
    assert half.score_samples(X_test).dtype == np.float32
    assert abs(half_score - full_score) <= 0.01 * abs(full_score), (half_score, full_score)


def test_rbm_offers_no_bf16_and_pretraining_passes_what_applies(X):
    """The RBM's CD step has no forward pass to autocast: "bf16" is refused there, and an
    autoencoder pretrained by RBMs under "bf16" pretrains them in float32 ("tf32" passes on)."""
    Xb = (X > 0.5).astype(np.float32)
    with pytest.raises(ValueError, match="precision.*among"):
        BernoulliRBMStack(precision="bf16", device="cpu").fit(Xb)
    for precision, expected in (("bf16", "float32"), ("tf32", "tf32")):
        ae = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(6,), activation="logistic", max_iter=2,
                                    pretraining="rbm", precision=precision, random_state=0, device="cpu").fit(X)
        assert ae.pretrained_.precision == expected


def test_tf32_switches_are_set_for_training_and_put_back():
    """The process-wide TF32 switches: on inside a CUDA training block, back as they were after
    it, also when blocks overlap (fits in threads); untouched for other settings or the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with _engine.training_precision("tf32", "cuda:0"):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
            with _engine.training_precision("tf32", "cuda:0"):
                pass
            assert torch.backends.cuda.matmul.allow_tf32  # the outer block still runs
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        for precision, device in (("tf32", "cpu"), ("bf16", "cuda"), ("float32", "cuda")):
            with _engine.training_precision(precision, device):
                assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer, BernoulliRBMStack])
def test_model_pickled_before_precision_existed_loads_and_trains(cls, X):
    """An estimator pickled before ``precision`` was a parameter: loaded, it reports the default
    (how it was trained), clones, and trains on."""
    Xb = (X > 0.5).astype(np.float32) if cls is BernoulliRBMStack else X
    est = cls(n_components=2, max_iter=2, random_state=0, device="cpu").fit(Xb)
    state = est.__getstate__()
    del state["precision"]
    old = cls.__new__(cls)
    old.__setstate__(state)
    assert old.get_params()["precision"] == "float32"
    np.testing.assert_array_equal(old.transform(Xb), est.transform(Xb))
    old.partial_fit(Xb)
    from sklearn.base import clone
    assert clone(old).get_params() == old.get_params()


def test_precision_is_validated(X):
    with pytest.raises(ValueError, match="precision"):
        AutoencoderTransformer(precision="fp8", device="cpu").fit(X)


# ----------------------------------------------------------------------------------- CUDA
CUDA_MODELS = {
    "ae": lambda **kw: AutoencoderTransformer(n_components=3, hidden_layer_sizes=(16,), batch_size=32, **kw),
    "sparse": lambda **kw: SparseAutoencoder(n_components=6, batch_size=32, **kw),
    "vae": lambda **kw: VAETransformer(n_components=2, hidden_layer_sizes=(16,), batch_size=32,
                                       n_importance_samples=10, **kw),
    "rbm": lambda **kw: BernoulliRBMStack(n_components=8, batch_size=32, persistent=True, n_ais_runs=8,
                                         n_ais_betas=50, **kw),
}


def _count_graphs(monkeypatch):
    closed = []
    original = _graphs.GraphedStep.close

    def close(self):
        closed.append((self.captures, self.replays))
        original(self)

    monkeypatch.setattr(_graphs.GraphedStep, "close", close)
    return closed


@needs_cuda
@pytest.mark.parametrize("name", sorted(CUDA_MODELS))
def test_cuda_graph_training_matches_eager(name, X, monkeypatch):
    """On CUDA the replayed steps give the eager loop's losses to float32 tolerance (the same
    random draws included), the graph was used, and the optimizer is left as an eager one."""
    data = (X > 0.5).astype(np.float32) if name == "rbm" else X
    make = lambda: CUDA_MODELS[name](max_iter=4, tol=0.0, random_state=0, device="cuda")
    closed = _count_graphs(monkeypatch)
    graphed = make().fit(data)
    assert len(closed) == 1 and closed[0][0] >= 1 and closed[0][1] > 0, closed
    with monkeypatch.context() as mp:
        mp.setenv(_graphs.ENVIRONMENT_SWITCH, "0")
        eager = make().fit(data)
    assert len(closed) == 1
    np.testing.assert_allclose(graphed.loss_curve_, eager.loss_curve_, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(graphed.transform(data), eager.transform(data), rtol=1e-3, atol=1e-4)
    for group in graphed.net_.optimizer_.param_groups:
        assert group.get("capturable", False) is False
    for state in graphed.net_.optimizer_.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.dim() == 0:
                assert value.device.type == "cpu"


@needs_cuda
@pytest.mark.parametrize("name", sorted(CUDA_MODELS))
def test_cuda_graph_training_is_reproducible_and_continues(name, X):
    """Same seed, same graph-trained model; a partial_fit, a pickle onto the CPU and a CPU
    partial_fit carry on from it."""
    data = (X > 0.5).astype(np.float32) if name == "rbm" else X
    a = CUDA_MODELS[name](max_iter=3, tol=0.0, random_state=0, device="cuda").fit(data)
    b = CUDA_MODELS[name](max_iter=3, tol=0.0, random_state=0, device="cuda").fit(data)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    a.partial_fit(data)
    cpu = pickle.loads(pickle.dumps(a))
    cpu.set_params(device="cpu")
    np.testing.assert_allclose(cpu.transform(data), a.transform(data), rtol=1e-4, atol=1e-5)
    cpu.partial_fit(data)
    assert np.all(np.isfinite(cpu.transform(data)))


@needs_cuda
def test_cuda_bf16_and_tf32_keep_held_out_likelihood(digits_split):
    X_train, X_test, _, _ = digits_split
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    from skorch.callbacks import Callback

    class Switch(Callback):
        def on_epoch_end(self, net, **kwargs):
            self.seen = torch.backends.cuda.matmul.allow_tf32

    common = dict(n_components=4, hidden_layer_sizes=(32,), max_iter=60, random_state=0, device="cuda")
    before = torch.backends.cuda.matmul.allow_tf32
    full = AutoencoderTransformer(**common).fit(X_train).score(X_test)
    for precision in ("tf32", "bf16"):
        switch = Switch()
        score = AutoencoderTransformer(precision=precision, callbacks=[switch], **common).fit(X_train).score(X_test)
        assert abs(score - full) <= 0.01 * abs(full), (precision, score, full)
        assert switch.seen is (precision == "tf32" or before)
    assert torch.backends.cuda.matmul.allow_tf32 is before  # put back after training
