"""Training: a skorch ``NeuralNet`` fed from tensors that already sit on the device.

Nothing in this file knows about any one model. An estimator hands over a module, a criterion
(``criterion(module_output, x)`` returns the mean loss of a batch) and its settings; the engine
builds the net, feeds it minibatches sliced from device-resident tensors (skorch's default
``DataLoader`` path spends its time in per-row ``Dataset.__getitem__``), shuffles with a seeded
generator, stops the way ``MLPRegressor`` does, restores the best weights under early stopping,
shows progress, refuses to carry on from a diverging loss, and tells a user's Ctrl-C apart from a
callback that ends training. A fit (with everything nested in it: the layers of a stack,
pretraining and fine-tuning) runs inside one ``fit_session``.
"""

import copy
import fnmatch
import functools
import math
import os
import signal
import sys
import threading
import warnings
import contextlib
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch import NeuralNet
from skorch.callbacks import Callback

from . import _graphs

# torch's optimizers import a large part of torch (sympy included) when the first one is built; a
# Ctrl-C in the middle of that import leaves it half-loaded for the rest of the process, so it
# happens here, at import time, instead of inside the first fit
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

#: a training loss that rises this many times its starting magnitude has diverged
EXPLOSION_FACTOR = 1e4
#: weights this many times the data's largest magnitude (at least 1) have diverged
WEIGHT_LIMIT = 1e8

_PREFIX = "sklearn_ae."  # our callbacks' names: a user's callback names cannot clash with them


class DivergenceError(ValueError):
    """Raised when training diverges: a non-finite loss, a loss that explodes by orders of
    magnitude over its starting value, or weights beyond any sane range."""


def resolve_device(device):
    """Turn the ``device`` parameter into a concrete ``torch.device``.

    ``"auto"`` picks CUDA when available. Asking for CUDA on a machine without it is a
    ``ValueError`` rather than a failure deep inside torch.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda'; got {device!r}.")
    if device == "accelerate":
        raise ValueError(
            "device='accelerate' (skorch's Accelerate integration) is available for the "
            "autoencoders and VAE, not for this estimator; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)."
        )
    return resolved


class _SharedSetting:
    """A process-wide torch setting that overlapping blocks (fits in several threads) share:
    the first block in saves the original, each sets its value, the last out puts it back."""

    def __init__(self, read, write):
        self.read, self.write = read, write
        self.lock = threading.Lock()
        self.users = 0
        self.saved = None

    @contextmanager
    def set(self, value):
        with self.lock:
            if self.users == 0:
                self.saved = self.read()
            self.users += 1
            self.write(value)
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    self.write(self.saved)


def _set_tf32(switches):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches


_THREADS = _SharedSetting(torch.get_num_threads, torch.set_num_threads)
_TF32 = _SharedSetting(lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
                       _set_tf32)


@contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` intra-op threads (None leaves torch's setting alone;
    torch's setting is process-wide, see ``_SharedSetting``)."""
    if n_threads is None:
        yield
        return
    with _THREADS.set(n_threads):
        yield


#: the ``precision`` settings of the estimators
PRECISIONS = ("float32", "tf32", "bf16")


@contextmanager
def training_precision(precision, device):
    """Run a training block with ``precision="tf32"``'s matrix products on CUDA: TensorFloat-32
    (torch's process-wide switches, put back when the block ends). ``"float32"`` and ``"bf16"``
    (autocast, applied per forward pass by the net) change nothing here; on the CPU there is no
    TensorFloat-32 and ``"tf32"`` trains in float32."""
    if precision != "tf32" or torch.device(device).type != "cuda":
        yield
        return
    with _TF32.set((True, True)):
        yield


# ------------------------------------------------------------------------------------ data
class DeviceDataset(torch.utils.data.Dataset):
    """Training rows for the engine's iterator, without copies of the data.

    ``X`` is a tensor on the training device, or a scipy sparse matrix (CSR) kept where it is and
    densified onto ``device`` a batch at a time. ``indices`` (a 1-d integer array) selects the
    rows that belong to this set (a validation split by index); None means all of them.
    ``generator`` (a CPU ``torch.Generator``) drives the shuffling.
    """

    def __init__(self, X, generator=None, indices=None, device=None):
        self.X = X
        self.generator = generator
        self.device = X.device if torch.is_tensor(X) else torch.device(device or "cpu")
        #: where row indices live: beside a tensor X (a shuffled batch is gathered without a copy
        #: from the host per batch), on the host for a sparse matrix
        self.index_device = X.device if torch.is_tensor(X) else torch.device("cpu")
        self.indices = (None if indices is None else
                        torch.as_tensor(np.asarray(indices), dtype=torch.int64).to(self.index_device))

    def __len__(self):
        return self.X.shape[0] if self.indices is None else len(self.indices)

    def take(self, rows):
        """The dense batch of rows ``rows`` (a slice or an int64 tensor on ``index_device``)."""
        if self.indices is not None:
            rows = self.indices[rows]
        if torch.is_tensor(self.X):
            if isinstance(rows, slice):
                return self.X[rows]
            return self.X.index_select(0, rows)
        part = self.X[rows if isinstance(rows, slice) else rows.numpy()]
        return torch.from_numpy(np.asarray(part.toarray(), dtype=np.float32)).to(self.device)

    def __getitem__(self, i):
        row = self.take(slice(i, i + 1))[0]
        return row, row


class DeviceBatchIterator:
    """Yield ``(x_batch, x_batch)`` from a ``DeviceDataset``: the target of an autoencoder is its
    input. Shuffled epochs gather each batch by index, so no shuffled copy of the data is made.
    Passed to skorch as ``iterator_train`` / ``iterator_valid``."""

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def batches(self):
        """The row selections of one epoch: slices, or index tensors when shuffled."""
        n = len(self.dataset)
        order = None
        if self.shuffle:  # drawn on the host (the same order on every device), moved once
            order = torch.randperm(n, generator=self.dataset.generator).to(self.dataset.index_device)
        for start in range(0, n, self.batch_size):
            yield slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]

    def __iter__(self):
        for rows in self.batches():
            xb = self.dataset.take(rows)
            yield xb, xb


class _Holdout:
    """skorch ``train_split`` that returns a validation set prepared by the estimator."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


# ------------------------------------------------------------------------- fit sessions
class FitSession:
    """One fit, with everything nested in it (the layers of a stack, pretraining, fine-tuning).

    Knows whether the user pressed Ctrl-C (``interrupted``), holds the progress bar, and the
    warnings to give when the fit ends (after the bar is closed). A callback that raises
    ``KeyboardInterrupt`` to end training (skorch's ``EarlyStopping``) ends only that net's
    training; a Ctrl-C ends the whole fit.
    """

    def __init__(self, verbose, desc):
        self.verbose = verbose
        self.desc = desc
        self.interrupted = False
        self.in_loop = False
        self.bar = None
        self.warnings = []

    def on_sigint(self, previous, signum, frame):
        """Ctrl-C. Inside skorch's training loop it raises ``KeyboardInterrupt`` there (skorch
        ends the loop); elsewhere in the fit (between layers, in the statistics after training)
        it is deferred, and the fit stops at the next point where the estimator is consistent.
        A second Ctrl-C always raises. A handler of the user's own decides for itself."""
        if previous is not signal.default_int_handler:
            try:
                previous(signum, frame)
            except KeyboardInterrupt:
                self.interrupted = True
                raise
            return
        first = not self.interrupted
        self.interrupted = True
        if self.in_loop or not first:
            raise KeyboardInterrupt

    def progress(self, total):
        """Add ``total`` epochs to the progress bar (created on first use when verbose)."""
        if not self.verbose:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="epoch", leave=True)
        else:
            self.bar.total += total
            self.bar.refresh()

    def warn(self, message, category):
        """A warning given when the fit ends, once."""
        if (message, category) not in self.warnings:
            self.warnings.append((message, category))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        for message, category in self.warnings:
            warn(message, category)
        self.warnings = []


_SESSION = threading.local()


@contextmanager
def fit_session(verbose=0, desc=None):
    """The current fit session, or a new one for the outermost fit, which (in the main thread)
    handles SIGINT as ``FitSession.on_sigint`` says while it is open."""
    outer = getattr(_SESSION, "current", None)
    if outer is not None:
        yield outer
        return
    session = FitSession(verbose, desc)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            signal.signal(signal.SIGINT, functools.partial(session.on_sigint, previous))
        else:
            previous = None
    _SESSION.current = session
    try:
        yield session
        _SESSION.current = None
        session.close()  # the warnings of a fit that succeeded (not of one rolled back)
    finally:
        _SESSION.current = None
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if session.bar is not None:
            session.bar.close()


def in_fit():
    """Whether a fit session is open in this thread."""
    return getattr(_SESSION, "current", None) is not None


def current_session():
    """The open fit session (a new, silent one outside any fit)."""
    return getattr(_SESSION, "current", None) or FitSession(0, None)


# ---------------------------------------------------------------------------- callbacks
class Convergence(Callback):
    """MLPRegressor's stopping rule, and early stopping that restores the best weights.

    Without a validation set: stop when the training loss has not improved by ``tol`` for
    more than ``n_iter_no_change`` epochs. With one: the same on the validation score (the
    negated validation loss), keeping a copy of the best weights and restoring it at the end.
    """

    def __init__(self, tol, n_iter_no_change, active=True, on_validation=True):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.active = active
        self.on_validation = on_validation  # False: a validation set held out for a callback only

    def on_train_begin(self, net, **kwargs):
        self.converged = False
        self.best_loss = math.inf
        self.best_score = -math.inf
        self.best_state = None
        self.no_improvement = 0
        self.epochs_run = 0

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.epochs_run += 1
        row = net.history[-1]
        if dataset_valid is not None:
            row["valid_score"] = -row["valid_loss"]
        if dataset_valid is not None and self.on_validation:
            score = row["valid_score"]
            self.no_improvement = self.no_improvement + 1 if score < self.best_score + self.tol else 0
            if score > self.best_score:
                self.best_score = score
                self.best_state = copy.deepcopy(unwrapped(net.module_).state_dict())
        else:
            loss = row["train_loss"] = mean_over_processes(net, row["train_loss"])
            self.no_improvement = self.no_improvement + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
        if self.active and self.no_improvement > self.n_iter_no_change:
            self.converged = True
            raise KeyboardInterrupt  # skorch's way to end fit_loop early

    def on_train_end(self, net, **kwargs):
        if self.best_state is not None:
            unwrapped(net.module_).load_state_dict(self.best_state)
        self.best_state = None  # never pickle a copy of the weights


class DivergenceGuard(Callback):
    """Fail with ``DivergenceError`` when training diverges: a non-finite loss, a training loss
    that rises ``EXPLOSION_FACTOR`` times its starting magnitude (the first batch's loss,
    measured before any step), or weights beyond ``WEIGHT_LIMIT`` times the data's scale."""

    def __init__(self, estimator_name, data_scale=1.0, loss_limit=None):
        self.estimator_name = estimator_name
        self.data_scale = data_scale
        self.loss_limit = loss_limit  # an absolute bound on |loss|, for losses that start near 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:  # stop at the first non-finite loss, before skorch averages it
            self.check_finite(net, [net.history[-1]["batches"][-1]["train_loss"]])

    def check_finite(self, net, losses):
        bad = [v for v in losses if not math.isfinite(v)]
        if bad:
            self.fail(net, f"the training loss became {bad[0]}")

    def on_epoch_end(self, net, **kwargs):
        history = net.history
        losses = [b["train_loss"] for b in history[-1]["batches"] if "train_loss" in b]
        losses.append(history[-1]["train_loss"])
        worst = max(losses, key=lambda v: v if math.isfinite(v) else math.inf)
        worst = mean_over_processes(net, worst)  # every process raises, or none does
        if not math.isfinite(worst):
            self.fail(net, f"the training loss became {worst}")
        start = starting_loss(history)
        if worst - start > EXPLOSION_FACTOR * max(abs(start), 1.0):
            self.fail(net, f"the training loss rose from {start:.4g} to {worst:.4g}")
        if self.loss_limit is not None:
            largest = max(abs(v) for v in losses)
            if largest > self.loss_limit:
                self.fail(net, f"the training loss reached {largest:.4g} (beyond {self.loss_limit:.4g})")
        # one pass over the weights and one read-back: a NaN or inf shows in the largest magnitude
        magnitudes = [p.detach().abs().max() for p in net.module_.parameters() if p.numel()]
        if magnitudes:
            biggest = float(torch.stack(magnitudes).max())
            if not math.isfinite(biggest):
                self.fail(net, "the weights became non-finite")
            if biggest > WEIGHT_LIMIT * max(self.data_scale, 1.0):
                self.fail(net, f"a weight reached {biggest:.3g}")

    def fail(self, net, what):
        raise DivergenceError(
            f"{self.estimator_name} diverged: {what} in epoch {len(net.history)}. Lower "
            "learning_rate_init (or learning_rate) or alpha, or scale the input features (e.g. "
            "with StandardScaler)."
        )


def starting_loss(history):
    """The loss the net's training started from: its first batch's, else its first epoch's."""
    first = history[0]
    for batch in first.get("batches", []):
        if "train_loss" in batch:
            return batch["train_loss"]
    return first["train_loss"]


class EpochLog(Callback):
    """One plain line per epoch (``verbose >= 2``), in the style of scikit-learn's ``BernoulliRBM``."""

    def __init__(self, estimator_name):
        self.estimator_name = estimator_name

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        line = f"[{self.estimator_name}] Iteration {row['epoch']}, loss = {row['train_loss']:.4f}"
        if "valid_score" in row:
            line += f", validation score = {row['valid_score']:.4f}"
        line += f", time = {row['dur']:.2f}s"
        print(line, flush=True)


class EpochProgress(Callback):
    """Advance the fit session's progress bar after each epoch, with the loss in it."""

    def on_epoch_end(self, net, **kwargs):
        bar = current_session().bar
        if bar is not None:
            row = net.history[-1]
            bar.set_postfix(loss=f"{row['train_loss']:.4g}", refresh=False)
            bar.update(1)


# ------------------------------------------------------------------------------- the net
def _defines(callback, hook):
    """Whether ``callback`` implements ``hook`` (rather than inheriting ``Callback``'s no-op)."""
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


class _Net(NeuralNet):
    """skorch's NeuralNet, with the two extension points skorch documents for custom loops
    (``run_single_epoch``, ``train_step``) overridden for speed, and pickled so that it loads on
    a machine without the training device.

    The module and criterion are handed over as instances, so skorch keeps them twice: as the
    ``module`` / ``criterion`` parameters and as ``module_`` / ``criterion_``. skorch unpickles
    only the latter with ``map_location``; the parameters are left out of the pickle and point
    back to the loaded instances.
    """

    def __getstate__(self):
        state = super().__getstate__()
        for name in ("_graphed", "_autocast"):  # set for the length of a training call only
            state.pop(name, None)
        for name in ("module", "criterion"):
            if isinstance(state.get(name), torch.nn.Module):
                state[name] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if self.module is None:
            self.module = self.module_
        if self.criterion is None:
            self.criterion = self.criterion_

    def _batch_listeners(self):
        """The callbacks that need skorch's per-batch hooks (our divergence guard does not: the
        lean epoch checks its losses itself)."""
        return [cb for _, cb in self.callbacks_ if not isinstance(cb, DivergenceGuard)
                and (_defines(cb, "on_batch_begin") or _defines(cb, "on_batch_end"))]

    def _grad_listeners(self):
        """Whether a callback listens to ``on_grad_computed`` (worked out once per set of callbacks)."""
        cached = self.__dict__.get("_grad_listeners_of")
        if cached is None or cached[0] is not self.callbacks_:
            cached = self._grad_listeners_of = (
                self.callbacks_, any(_defines(cb, "on_grad_computed") for _, cb in self.callbacks_))
        return cached[1]

    def _per_batch_callbacks(self):
        """Whether a callback runs code per batch (per-batch or gradient hooks)."""
        return bool(self._batch_listeners()) or self._grad_listeners()

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """A training epoch without a host round trip per batch.

        Why overridden: skorch reads each batch's loss back as a Python float (on CUDA, a
        synchronisation per batch). When no callback listens to the per-batch hooks, the losses
        go into one buffer on the device, read back once at the end of the epoch and recorded in
        the history batch by batch, as skorch records them. On CUDA the steps of full-size
        batches are replayed from a CUDA graph (``_graphs``) when the training call set one up.
        """
        if not training or iterator is None or fit_params or self._batch_listeners():
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        graphed = self.__dict__.get("_graphed")
        if graphed is not None:
            graphed.begin_epoch()
        losses, sizes = None, []
        for batch in iterator:
            if graphed is None:
                loss = step_fn(batch)["loss"].detach()
            else:
                loss = graphed(batch) if graphed.serves(batch) else graphed.eager(batch)
            if losses is None:
                losses = torch.empty(len(iterator), dtype=torch.float64, device=loss.device)
            losses[len(sizes)] = loss
            sizes.append(len(batch[0]))
        values = [] if losses is None else losses[:len(sizes)].tolist()
        for _, cb in self.callbacks_:
            if isinstance(cb, DivergenceGuard):
                cb.check_finite(self, values)
        # what new_batch / record_batch would write, batch by batch, appended to the epoch's
        # list of batches at once (skorch's History is a list of dicts)
        self.history[-1]["batches"].extend(
            {prefix + "_loss": value, prefix + "_batch_size": size} for value, size in zip(values, sizes))
        self.history.record(prefix + "_batch_count", len(sizes))

    def infer(self, x, **fit_params):
        """The module's forward pass, under autocast when the training call asked for a lower
        precision (``_autocast``: the device type and dtype; its cache off, as a CUDA-graph
        capture needs)."""
        autocast = self.__dict__.get("_autocast")  # (device type, dtype)
        if autocast is None:
            return super().infer(x, **fit_params)
        with torch.autocast(autocast[0], dtype=autocast[1], cache_enabled=False):
            return super().infer(x, **fit_params)

    def train_step(self, batch, **fit_params):
        """One optimizer step.

        Why overridden: when no callback listens to ``on_grad_computed``, skorch's closure and
        its walk over the parameters for that hook cost more than a small model's arithmetic;
        the step is then zero_grad, ``train_step_single`` and ``optimizer.step()``.
        """
        if self._grad_listeners():
            return super().train_step(batch, **fit_params)
        for group in self.optimizer_.param_groups:  # zero_grad(set_to_none=True), minus its profiler scope
            for param in group["params"]:
                param.grad = None
        step = self.train_step_single(batch, **fit_params)
        self.optimizer_.step()
        return step


# ------------------------------------------------------------------------------ helpers
def unwrapped(module):
    """The module itself, also while it is wrapped in ``DistributedDataParallel``."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def mean_over_processes(net, value):
    """``value`` averaged over the processes of a distributed run (itself otherwise), so that
    every process takes the same decision to stop."""
    accelerator = getattr(net, "accelerator", None)
    if accelerator is None or accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor(float(value), device=accelerator.device), "mean"))


def move_net(net, device):
    """Move a fitted net (module, criterion and optimizer state) to ``device`` in place.

    A model fitted on one device and trained further on another (e.g. fitted on a CPU-only
    machine, loaded where ``device="auto"`` now means CUDA) continues with its optimizer state.
    """
    device = torch.device(device)
    if net.device is not None and torch.device(net.device) == device:
        return net
    net.module_.to(device)
    net.criterion_.to(device)
    for state in net.optimizer_.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and value.dim() > 0:  # Adam's "step" stays where it is
                state[key] = value.to(device)
    net.device = "cpu" if device.type == "cpu" else str(device)
    return net


class NetSnapshot:
    """Everything training changes in a net, taken before a call continues training it, so that a
    call that fails can put the net back exactly as it was: the module's state dict (weights,
    buffers and extra state such as sampling generators), the optimizer's state, the history's
    length, the device and the settings the call changed."""

    def __init__(self, net):
        self.net = net
        self.module = copy.deepcopy(unwrapped(net.module_).state_dict())
        self.optimizer = copy.deepcopy(getattr(net.optimizer_, "optimizer", net.optimizer_).state_dict())
        self.n_epochs = len(net.history)
        self.device = net.device
        self.params = {k: getattr(net, k) for k in ("batch_size", "callbacks", "iterator_train__shuffle")}
        self.callbacks = list(net.callbacks_)

    def restore(self):
        net = self.net
        if self.device is not None:
            move_net(net, self.device)
        unwrapped(net.module_).load_state_dict(self.module)
        getattr(net.optimizer_, "optimizer", net.optimizer_).load_state_dict(self.optimizer)
        del net.history[self.n_epochs:]
        vars(net).update(self.params)
        net.callbacks_ = self.callbacks


def set_optimizer_params(net, optimizer_params):
    """Apply the estimator's current optimizer hyperparameters (learning rate, momentum, weight
    decay...) to a fitted net's optimizer, keeping its state. ``param_groups`` overrides, given
    as skorch gives them ((name pattern, settings) pairs), apply to the groups whose parameters
    all match the pattern."""
    settings = dict(optimizer_params)
    overrides = settings.pop("param_groups", [])
    names = {id(p): name for name, p in unwrapped(net.module_).named_parameters()}
    for group in net.optimizer_.param_groups:
        group_settings = dict(settings)
        group_names = [names.get(id(p), "") for p in group["params"]]
        for pattern, override in overrides:
            if group_names and all(fnmatch.fnmatchcase(name, pattern) for name in group_names):
                group_settings.update(override)
        for key, value in group_settings.items():
            if key in group:
                group[key] = value


def our_callbacks(estimator_name, *, tol, n_iter_no_change, verbose, data_scale=1.0, loss_limit=None,
                  label=None):
    """The engine's callbacks, under names no user callback can take. ``label`` names the net in
    the per-epoch lines (a layer of a stack)."""
    ours = [("divergence_guard", DivergenceGuard(estimator_name, data_scale, loss_limit)),
            ("convergence", Convergence(tol, n_iter_no_change))]
    if verbose:
        ours.append(("progress", EpochProgress()))
    if verbose and verbose >= 2:
        ours.append(("epoch_log", EpochLog(estimator_name if label is None else f"{estimator_name} {label}")))
    return [(reserved_name(name), cb) for name, cb in ours]


def user_callbacks(callbacks):
    """The ``callbacks`` parameter as (name, callback) pairs, checked. The instances are used as
    given, as skorch uses them (a callback that logs to the user's objects keeps doing so)."""
    user = [cb if isinstance(cb, tuple) else (None, cb) for cb in callbacks or []]
    out = []
    for i, (name, cb) in enumerate(user):
        if not isinstance(cb, Callback) or (name is not None and not isinstance(name, str)):
            raise TypeError(
                "callbacks must be skorch Callback instances or (name, Callback) tuples; "
                f"got {(name, cb)!r}.")
        if name is not None and name.startswith(_PREFIX):
            raise ValueError(f"callback names starting with {_PREFIX!r} are reserved; got {name!r}.")
        out.append((name or f"{type(cb).__name__}_{i}", cb))
    return out


def needs_validation(callbacks):
    """Whether a user callback monitors a validation metric (skorch's ``EarlyStopping`` and
    ``Checkpoint`` do by default), so that the fit must hold out a validation set."""
    for _, cb in user_callbacks(callbacks):
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid_"):
            return True
    return False


def reserved_name(name):
    """A callback name of this package's, which no user callback can take."""
    return _PREFIX + name


def find(net, kind):
    """Our callback of type ``kind`` in ``net``."""
    for name, cb in net.callbacks_:
        if name.startswith(_PREFIX) and isinstance(cb, kind):
            return cb
    raise LookupError(kind.__name__)


def set_callbacks(net, callbacks):
    """Give ``net`` the callbacks ``callbacks`` (ours and the user's), initialised."""
    net.set_params(callbacks=callbacks)


def build_net(module, criterion, *, optimizer, optimizer_params, batch_size, shuffle, callbacks,
              verbose=0, net_class=_Net, **specific):
    """Build (and initialise) the skorch net that trains ``module`` with ``criterion``;
    ``specific`` holds the device and any other skorch parameter."""
    params = {f"optimizer__{k}": v for k, v in optimizer_params.items()}
    defaults = {"criterion": criterion, "iterator_train": DeviceBatchIterator}
    if "callbacks__print_log__sink" not in specific:
        defaults["callbacks__print_log"] = None  # the progress bar and EpochLog report progress
    net = net_class(
        module=module,
        optimizer=optimizer,
        batch_size=batch_size,
        iterator_train__shuffle=shuffle,
        iterator_valid=DeviceBatchIterator,
        train_split=None,
        callbacks=callbacks,
        verbose=verbose,  # skorch's callbacks (EarlyStopping's message) print when it is set
        torch_load_kwargs={"weights_only": True},
        **params,
        **{**defaults, **specific},
    )
    return net.initialize()


def train(net, data_train, data_valid=None, *, epochs, stop=True, stop_on_validation=True, precision="float32"):
    """Run up to ``epochs`` epochs of ``net`` on ``DeviceDataset`` s.

    Returns how training ended: ``"converged"`` (our stopping rule), ``"max_iter"``,
    ``"completed"`` (every epoch ran, ``stop=False``), ``"stopped"`` (a callback such as
    skorch's ``EarlyStopping`` ended it) or ``"interrupted"`` (the user pressed Ctrl-C). An
    epoch cut short, by either, is dropped from the history; the weights trained so far are
    kept. ``stop=False`` runs every epoch; ``stop_on_validation=False`` keeps the stopping rule
    on the training loss when a validation set is only held out for a callback. ``precision``:
    ``"bf16"`` runs the forward passes under bfloat16 autocast (``training_precision`` sets the
    rest).
    """
    session = current_session()
    convergence = find(net, Convergence)
    convergence.active = stop
    convergence.on_validation = stop_on_validation
    net.train_split = None if data_valid is None else _Holdout(data_valid)
    session.in_loop = True
    device = next(unwrapped(net.module_).parameters()).device  # with its index, as the data's
    net._graphed = None
    try:
        # a GPU other than the current one: streams, graphs and generator states are made on it
        with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
            net._autocast = (device.type, torch.bfloat16) if precision == "bf16" else None
            net._graphed = _graphs.graphed_step(net, device, net._per_batch_callbacks())
            net.partial_fit(data_train, None, epochs=epochs)
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        find(net, DivergenceGuard).fail(net, f"the optimizer's step overflowed ({exc})")
    except KeyboardInterrupt:
        if not session.interrupted:  # raised by a callback after the loop (on_train_end)
            raise
    finally:
        session.in_loop = False
        net.train_split = None  # never keep a reference to the data
        graphed, net._graphed, net._autocast = net._graphed, None, None
        if graphed is not None:
            graphed.close()
    if len(net.history) and "train_loss" not in net.history[-1]:
        del net.history[-1]  # the epoch that a Ctrl-C or a callback's stop cut short
    ran = convergence.epochs_run
    if session.bar is not None and ran < epochs:
        session.bar.total -= epochs - ran
        session.bar.refresh()
    if session.interrupted:
        return "interrupted"
    if convergence.converged:
        return "converged"
    if ran < epochs:
        return "stopped"
    return "max_iter" if stop else "completed"


def report(outcome, estimator_name, n_epochs, max_iter):
    """The warning a fit ends with, given when the fit session closes: Ctrl-C (once per
    session), or MLPRegressor's ``ConvergenceWarning`` when ``max_iter`` ran out first.
    ``n_epochs``: the epochs trained, or a list of them per layer of a stack."""
    session = current_session()
    if outcome == "interrupted":
        if isinstance(n_epochs, (list, tuple)):  # per layer of a stack
            done = (f"{', '.join(map(str, n_epochs))} complete epoch(s) of its {len(n_epochs)} layers "
                    "(a layer with none keeps its initial weights)")
        else:
            done = f"{n_epochs} complete epoch(s)"
        session.warn(f"{estimator_name}: training was interrupted (KeyboardInterrupt) after {done}; the "
                     "weights trained so far are kept and the estimator is usable.", UserWarning)
    elif outcome == "max_iter":
        session.warn(f"Stochastic optimizer: maximum iterations ({max_iter}) reached and the "
                     "optimization hasn't converged yet.", ConvergenceWarning)


_PACKAGES = tuple(os.path.dirname(m.__file__) + os.sep for m in (sys.modules[__name__.rsplit(".", 1)[0]],
                                                                   sys.modules["sklearn"])) + (contextlib.__file__,)


def warn(message, category):
    """``warnings.warn`` attributed to the user's line: the first caller outside this package and
    scikit-learn (a fit can be nested in a pipeline, a search, or pretraining)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGES):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def data_scale(X):
    """The largest magnitude in X (a tensor or a sparse matrix), for the divergence guard."""
    if sp.issparse(X):
        return max(float(X.data.max()), -float(X.data.min())) if X.nnz else 0.0
    return max(float(X.max()), -float(X.min())) if X.numel() else 0.0  # no copy of X
