"""The training engine's lean epoch: the same arithmetic and history as skorch's own loop."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_ae import AutoencoderTransformer, BernoulliRBMStack


class _StepCounter(Callback):
    """Counts the optimizer's own steps through torch's public step hook."""

    def initialize(self):
        self.steps = 0
        return self

    def on_train_begin(self, net, **kwargs):
        net.optimizer_.register_step_post_hook(lambda *args: setattr(self, "steps", self.steps + 1))


@pytest.mark.parametrize("make", [
    lambda cb: AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), batch_size=20, max_iter=3,
                                      tol=0.0, device="cpu", random_state=0, callbacks=[("steps", cb)]),
    lambda cb: BernoulliRBMStack(n_components=3, batch_size=20, max_iter=3, momentum=0.5, device="cpu",
                                 random_state=0, callbacks=[("steps", cb)]),
])
def test_every_batch_is_one_step_of_torchs_own_optimizer(make):
    """The optimizer is torch's, stepped by ``optimizer.step()``: 100 rows at batch 20 for 3
    epochs are 15 steps, each seen by a hook registered on it."""
    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    est = make(_StepCounter()).fit(X)
    nets = getattr(est, "nets_", None) or [est.net_]
    assert dict(nets[0].callbacks_)["steps"].steps == 15


class _Seen(Callback):
    """Counts the per-batch hooks it is called with."""

    def initialize(self):
        self.batches = self.grads = 0
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        self.batches += bool(training)

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.grads += 1
        assert all(p.grad is not None for _, p in named_parameters)


@pytest.mark.parametrize("make", [
    lambda cb: AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), batch_size=20, max_iter=3,
                                      tol=0.0, device="cpu", random_state=0, callbacks=[("seen", cb)]),
    lambda cb: BernoulliRBMStack(n_components=3, batch_size=20, max_iter=3, device="cpu", random_state=0,
                                 callbacks=[("seen", cb)]),
])
def test_per_batch_hooks_still_reach_callbacks_that_define_them(make):
    """Skipping the no-op hooks must not skip a user's: 100 rows at batch 20 for 3 epochs is 15
    batches, each with its gradients shown to ``on_grad_computed``."""
    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    est = make(_Seen())
    if "callbacks" not in est.get_params():
        pytest.skip("no callbacks parameter")
    est.fit(X)
    nets = getattr(est, "nets_", None) or [est.net_]
    seen = dict(nets[0].callbacks_)["seen"]
    assert (seen.batches, seen.grads) == (15, 15)


def test_same_weights_with_and_without_a_gradient_listener():
    """The lean step (no listener) and skorch's own (a listener on the gradients) train to the
    same weights."""
    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)

    def fit(callbacks):
        return BernoulliRBMStack(n_components=3, batch_size=20, max_iter=3, momentum=0.5, alpha=1e-3,
                                 device="cpu", random_state=0, callbacks=callbacks).fit(X)

    lean, stock = fit(None), fit([("seen", _Seen())])
    np.testing.assert_allclose(lean.coefs_[0], stock.coefs_[0], rtol=1e-5, atol=1e-6)
    ae_lean = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), batch_size=20, max_iter=3, tol=0.0,
                                     device="cpu", random_state=0).fit(X)
    ae_stock = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), batch_size=20, max_iter=3, tol=0.0,
                                      device="cpu", random_state=0, callbacks=[("seen", _Seen())]).fit(X)
    np.testing.assert_allclose(ae_lean.transform(X), ae_stock.transform(X), rtol=1e-5, atol=1e-6)
    # the lean epoch keeps skorch's history: every batch's loss and size, and the epoch's mean
    for lean_net, stock_net in ((lean.nets_[0], stock.nets_[0]), (ae_lean.net_, ae_stock.net_)):
        np.testing.assert_allclose(lean_net.history[:, "train_loss"], stock_net.history[:, "train_loss"], rtol=1e-5)
        np.testing.assert_allclose(lean_net.history[:, "batches", :, "train_loss"],
                                   stock_net.history[:, "batches", :, "train_loss"], rtol=1e-5)
        assert lean_net.history[:, "batches", :, "train_batch_size"] == [[20] * 5] * 3
        assert lean_net.history[:, "train_batch_count"] == stock_net.history[:, "train_batch_count"] == [5, 5, 5]


def test_lean_epoch_weights_the_last_short_batch():
    """90 rows at batch 40: batches of 40, 40 and 10; the epoch loss weights them by size, as
    skorch's own loop does."""
    X = np.random.default_rng(1).standard_normal((90, 5)).astype(np.float32)
    common = dict(n_components=2, hidden_layer_sizes=(4,), batch_size=40, max_iter=2, tol=0.0, device="cpu",
                  random_state=0)
    lean = AutoencoderTransformer(**common).fit(X)
    stock = AutoencoderTransformer(**common, callbacks=[("seen", _Seen())]).fit(X)
    np.testing.assert_allclose(lean.loss_curve_, stock.loss_curve_, rtol=1e-6)
    assert not lean.net_._batch_listeners() and stock.net_._batch_listeners()


def test_frozen_rbm_parameters_stay_put():
    """The RBM's closed-form step gives no gradient to a parameter that does not require one,
    as backward() would not: under skorch's Freezer the weights after one epoch and after two
    are the same (the initial ones), while the biases and an unfrozen run move."""
    from skorch.callbacks import Freezer

    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)

    def fit(epochs, callbacks=None):
        return BernoulliRBMStack(n_components=3, batch_size=20, max_iter=epochs, tol=0.0, device="cpu",
                                 random_state=0, callbacks=callbacks).fit(X)

    one = fit(1, [("freeze", Freezer("weight"))])
    two = fit(2, [("freeze", Freezer("weight"))])
    np.testing.assert_array_equal(one.coefs_[0], two.coefs_[0])
    assert not np.allclose(one.intercepts_hidden_[0], two.intercepts_hidden_[0])
    assert not np.allclose(fit(1).coefs_[0], one.coefs_[0])


def test_scheduler_sees_the_optimizer_step():
    """A learning-rate scheduler wraps ``optimizer.step``; torch sees every step (no "scheduler
    before optimizer" warning)."""
    import warnings

    from skorch.callbacks import LRScheduler

    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        BernoulliRBMStack(n_components=3, batch_size=20, max_iter=3, device="cpu", random_state=0,
                          callbacks=[("lr", LRScheduler(policy="StepLR", step_size=1))]).fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("make", [
    lambda device, cbs: AutoencoderTransformer(n_components=2, hidden_layer_sizes=(8,), batch_size=16, max_iter=3,
                                               tol=0.0, device=device, random_state=0, callbacks=cbs),
    lambda device, cbs: BernoulliRBMStack(n_components=3, batch_size=16, max_iter=3, momentum=0.5, device=device,
                                          random_state=0, callbacks=cbs),
])
def test_lean_epoch_on_cuda_matches_skorchs_loop(make):
    """On CUDA the epoch's losses stay on the device until its end; the recorded losses equal
    those of skorch's loop (a listener forces it), which reads each batch back."""
    X = np.random.default_rng(0).random((100, 6)).astype(np.float32)
    lean, stock = make("cuda", None).fit(X), make("cuda", [("seen", _Seen())]).fit(X)
    nets = [(a, b) for a, b in zip(getattr(lean, "nets_", [getattr(lean, "net_", None)]),
                                   getattr(stock, "nets_", [getattr(stock, "net_", None)]))]
    for a, b in nets:
        np.testing.assert_allclose(a.history[:, "train_loss"], b.history[:, "train_loss"], rtol=1e-5)
        assert not a._batch_listeners() and b._batch_listeners()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_rbm_optimizer_is_torchs_sgd(momentum, weight_decay):
    """The RBM's ``MomentumSGD`` takes torch.optim.SGD's steps and keeps its state: parameters
    and momentum buffers agree after several steps, with weight decay on one group only, and a
    state dict loads into a stock SGD."""
    from sklearn_ae._rbm import MomentumSGD

    def params():
        gen = torch.Generator().manual_seed(0)
        return [torch.nn.Parameter(torch.randn(4, 3, generator=gen)), torch.nn.Parameter(torch.randn(3, generator=gen))]

    ours, theirs = params(), params()
    groups = lambda p: [{"params": p[:1], "weight_decay": weight_decay}, {"params": p[1:], "weight_decay": 0.0}]
    opt_ours = MomentumSGD(groups(ours), lr=0.05, momentum=momentum)
    opt_theirs = torch.optim.SGD(groups(theirs), lr=0.05, momentum=momentum)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)
    if momentum:
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(opt_ours.state[p]["momentum_buffer"], opt_theirs.state[q]["momentum_buffer"])
    opt_theirs.load_state_dict(opt_ours.state_dict())


def test_rbm_optimizer_runs_step_hooks_as_torch_does():
    """``MomentumSGD`` leaves torch's profiler scope out of a plain step, not the step hooks:
    its own pre- and post-hooks and the global ones run around each step, in torch's order, and
    a pre-hook sees the gradients before the update."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    from sklearn_ae._rbm import MomentumSGD

    param = torch.nn.Parameter(torch.ones(3))
    opt = MomentumSGD([param], lr=0.5)
    calls = []
    handles = [opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", param.detach().clone()))),
               opt.register_step_post_hook(lambda o, a, k: calls.append(("post", param.detach().clone()))),
               register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("global pre", None))),
               register_optimizer_step_post_hook(lambda o, a, k: calls.append(("global post", None)))]
    try:
        param.grad = torch.ones(3)
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    assert [name for name, _ in calls] == ["global pre", "pre", "post", "global post"]
    torch.testing.assert_close(calls[1][1], torch.ones(3))
    torch.testing.assert_close(calls[2][1], torch.full((3,), 0.5))
    calls.clear()
    param.grad = torch.ones(3)
    opt.step()  # hooks removed: the lean step, same update
    assert calls == []
    torch.testing.assert_close(param.detach(), torch.zeros(3))
