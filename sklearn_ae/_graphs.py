"""CUDA-graph training: the whole training step of a full-size batch captured once, replayed per batch.

On CUDA a small network's eager step is bound by the host: Python, autograd and one kernel launch
per operation. Captured in a CUDA graph, the forward pass, the backward pass and the optimizer's
update of a batch are one launch. ``GraphedStep`` does this for a net's training epochs, knowing
nothing of the model:

* the first ``WARMUP_STEPS`` full-size batches of a training call run eagerly on a side stream
  (they are ordinary training steps; they create the optimizer's state and the modules' sampling
  generators before capture);
* the next full-size batch is copied into a static input, the step is captured (not run) and then
  replayed on it; every later full-size batch is a copy and a replay;
* a batch of another size (the last of an epoch) runs eagerly, as does every step of a training
  call the graph cannot serve: the CPU, a callback that listens to per-batch hooks, an optimizer
  step hook, ``device="accelerate"`` or ``SKLEARN_AE_CUDA_GRAPHS=0``;
* a capture that fails raises ``CaptureError``, which names the switch (torch leaves a failed
  capture's generators and allocator where eager steps cannot be trusted to continue);
* hyperparameters are baked into the captured kernels, so each epoch checks the optimizer's
  settings (a scheduler's learning rate), the identity of its state, of the parameters and of the
  sampling generators, and the plain attributes of the modules and the criterion, and captures
  again (after one eager step) when any changed.

Random draws stay graph-safe and reproducible: a module that samples during training names its
generators (``training_generators(device)``), which are registered with the graph, so each replay
advances them as the eager step would and draws the same numbers. An optimizer with a
``capturable`` setting (Adam) is switched to it for the training call (its step counter moves to
the device) and back afterwards, so a fitted model pickles and moves between devices as before.
"""

import os
import threading
import warnings

import torch
from torch.optim import optimizer as torch_optimizer

#: eager steps on a side stream before the first capture of a training call
WARMUP_STEPS = 3

#: set to "0" to train eagerly on CUDA too
ENVIRONMENT_SWITCH = "SKLEARN_AE_CUDA_GRAPHS"

_CAPTURABLE_WARNING = "This instance was constructed with capturable=True"

_CAPTURE_LOCK = threading.Lock()


class CaptureError(RuntimeError):
    """The training step could not be captured in a CUDA graph."""


def enabled():
    """Whether CUDA-graph training is switched on (it is unless ``SKLEARN_AE_CUDA_GRAPHS=0``)."""
    return os.environ.get(ENVIRONMENT_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


def has_step_hooks(optimizer):
    """Whether a step hook is registered on ``optimizer`` or globally: a replay would skip it.
    Read from the registries that torch's public ``register_step_*_hook`` and
    ``register_optimizer_step_*_hook`` fill (named privately); called for every RBM step."""
    return bool(optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or torch_optimizer._global_optimizer_pre_hooks or torch_optimizer._global_optimizer_post_hooks)


class CudaBackend:
    """The pieces of ``torch.cuda`` that ``GraphedStep`` uses; tests replace them on the CPU."""

    #: whether an optimizer must be switched to ``capturable=True`` for its step to be captured
    needs_capturable = True
    #: whether ``capture`` runs the step as well (a CUDA graph records it without running it)
    capture_runs_step = False

    def stream(self):
        return torch.cuda.Stream()  # on the current device, which training sets

    def current_stream(self):
        return torch.cuda.current_stream()

    def use_stream(self, stream):
        return torch.cuda.stream(stream)

    def record_stream(self, tensor, stream):
        tensor.record_stream(stream)

    def capture(self, generators, stream, step):
        """Capture ``step()`` into a new graph with a memory pool of its own (a pool that an
        earlier, dropped graph's tensors still use cannot take a new capture), registering
        ``generators``; returns the graph and what ``step`` returned. ``capture_begin`` /
        ``capture_end`` rather than ``torch.cuda.graph``, which also runs the garbage collector
        and empties the allocator's cache at every capture (once per epoch under a decaying
        learning rate)."""
        graph = torch.cuda.CUDAGraph()
        for gen in generators:
            graph.register_generator_state(gen)
        torch.cuda.synchronize()
        with torch.cuda.stream(stream):
            graph.capture_begin(capture_error_mode="thread_local")
            try:
                out = step()
            finally:
                graph.capture_end()
        return graph, out


def _attributes(module):
    return tuple((k, id(v) if torch.is_tensor(v) else v) for k, v in sorted(vars(module).items())
                 if torch.is_tensor(v) or isinstance(v, (bool, int, float, str, type(None))))


def _settings(group):
    return tuple((k, v) for k, v in sorted(group.items())
                 if k != "params" and isinstance(v, (bool, int, float, str, tuple, type(None))))


class GraphedStep:
    """The training steps of one training call of ``net``, captured and replayed (see the module
    docstring). ``__call__(batch)`` runs one step and returns its loss (a device tensor);
    ``close()`` ends the call, whatever happened in it."""

    def __init__(self, net, device, backend=None):
        self.net = net
        self.device = device
        self.generators = None  # those of the captured step
        self.backend = CudaBackend() if backend is None else backend
        self.stream = self.backend.stream()
        self.warm = 0
        self.graph = self.static_batch = self.static_loss = self.key = None
        self.captures = self.replays = 0
        # the optimizer's parameter groups (by position: loading a state dict renews them) whose
        # update torch captures only with capturable=True
        self.capturable = [i for i, group in enumerate(net.optimizer_.param_groups)
                           if self.backend.needs_capturable and group.get("capturable") is False]
        if self.capturable:
            self._set_capturable(True)

    # --------------------------------------------------------------------- state
    def _set_capturable(self, value):
        optimizer = self.net.optimizer_
        groups = [optimizer.param_groups[i] for i in self.capturable]
        for group in groups:
            group["capturable"] = value
        # torch moves the step counters to the device a capturable step needs when a state dict
        # loads; back on the host afterwards, where an eager step keeps them
        optimizer.load_state_dict(optimizer.state_dict())
        if not value:
            for group in groups:
                for param in group["params"]:
                    state = optimizer.state.get(param, {})
                    if torch.is_tensor(state.get("step")) and state["step"].device.type != "cpu":
                        state["step"] = state["step"].cpu()

    def _key(self):
        """What a capture bakes in besides the data: the optimizer (its identity, settings and
        the identity of its state), the identity of the parameters, and the plain attributes of
        every module and criterion (numbers such as a VAE's ``beta``, tensors such as a
        persistent Gibbs chain, by identity)."""
        optimizer, net = self.net.optimizer_, self.net
        modules = [*net.module_.modules(), *getattr(net.criterion_, "modules", lambda: [])()]
        return (id(optimizer), tuple(_settings(group) for group in optimizer.param_groups),
                tuple(id(t) for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t)),
                tuple(id(p) for p in net.module_.parameters()),
                tuple(_attributes(module) for module in modules))

    def current_generators(self):
        """The generators the modules draw from in training now (a loaded state dict can
        replace one)."""
        return [gen for module in self.net.module_.modules()
                for gen in getattr(module, "training_generators", lambda device: [])(self.device)]

    def begin_epoch(self):
        """Drop the captured step if what it baked in has changed since."""
        self.net.module_.train()
        if self.graph is not None and (self.current_generators() != self.generators or self._key() != self.key):
            self.graph = self.static_batch = self.static_loss = None
            self.warm = WARMUP_STEPS - 1  # one eager step first: it creates any state the change reset

    def close(self):
        self.graph = self.static_batch = self.static_loss = None
        if self.capturable:
            self._set_capturable(False)
            self.capturable = []

    # ---------------------------------------------------------------------- steps
    def serves(self, batch):
        """Whether ``batch`` goes through the graph (a full-size batch)."""
        return len(batch[0]) == self.net.batch_size

    def eager(self, batch):
        """One eager step of the net (the warning of a capturable optimizer run eagerly is ours
        to expect, not the user's to read)."""
        if not self.capturable:
            return self.net.train_step(batch)["loss"].detach()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
            return self.net.train_step(batch)["loss"].detach()

    def __call__(self, batch):
        backend = self.backend
        if self.graph is None:
            if self.warm < WARMUP_STEPS:
                self.warm += 1
                current = backend.current_stream()
                self.stream.wait_stream(current)
                with backend.use_stream(self.stream):
                    loss = self.eager(batch)
                current.wait_stream(self.stream)
                backend.record_stream(loss, current)  # read on the current stream after this
                return loss
            self._capture(batch)
            if self.backend.capture_runs_step:
                return self.static_loss
        self.static_batch[0].copy_(batch[0])
        for static, value in zip(self.static_batch[1:], batch[1:]):
            if static is not self.static_batch[0]:
                static.copy_(value)
        self.graph.replay()
        self.replays += 1
        return self.static_loss

    def _capture(self, batch):
        self.static_batch = [t.clone() for t in batch]
        if len(batch) == 2 and batch[1] is batch[0]:  # an autoencoder's target is its input
            self.static_batch[1] = self.static_batch[0]
        self.generators = self.current_generators()
        current = self.backend.current_stream()
        self.stream.wait_stream(current)
        try:
            with _CAPTURE_LOCK, warnings.catch_warnings():  # one capture at a time in a process
                warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
                graph, out = self.backend.capture(self.generators, self.stream,
                                                  lambda: self.net.train_step(tuple(self.static_batch)))
        except Exception as exc:
            cause = exc.__context__
            while cause is not None:  # a Ctrl-C during capture, then ending the capture failed
                if isinstance(cause, KeyboardInterrupt):
                    raise cause
                cause = cause.__context__
            # torch leaves a failed capture's generators and allocator in states that eager
            # steps cannot be trusted to run from: stop (the fit puts the estimator back)
            raise CaptureError(
                f"CUDA-graph capture of the training step failed ({type(exc).__name__}: {exc}). Set the "
                f"environment variable {ENVIRONMENT_SWITCH}=0 to train with the eager step.") from exc
        finally:
            current.wait_stream(self.stream)
        self.graph, self.static_loss = graph, out["loss"].detach()
        self.key = self._key()
        self.captures += 1


def graphed_step(net, device, per_batch_callbacks, backend=None):
    """A ``GraphedStep`` for a training call of ``net`` on ``device``, or None when the graph
    cannot serve it (see the module docstring). ``per_batch_callbacks``: whether a callback runs
    Python code per batch (a replay would skip it). ``backend``: a stand-in for ``torch.cuda``
    (tests)."""
    if backend is None and (device.type != "cuda" or not hasattr(torch.cuda, "CUDAGraph")):
        return None
    # a net with ``attach`` trains through Accelerate, whose wrappers and gradient
    # synchronisation between processes are not ours to capture
    if not enabled() or per_batch_callbacks or hasattr(net, "attach") or has_step_hooks(net.optimizer_):
        return None
    if (backend is None and any(hasattr(module, "training_generators") for module in net.module_.modules())
            and not hasattr(torch.cuda.CUDAGraph, "register_generator_state")):
        return None  # a torch too old to replay draws from a module's own generator
    return GraphedStep(net, device, backend)
