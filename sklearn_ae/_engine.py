"""Training: a skorch ``NeuralNet`` fed from tensors that already sit on the device.

Nothing in this file knows about any one model. An estimator hands over a module, a criterion
(``criterion(module_output, x)`` returns the mean loss of a batch) and its settings; the engine
builds the net, feeds it minibatches sliced from device-resident tensors (skorch's default
``DataLoader`` path spends its time in per-row ``Dataset.__getitem__``), shuffles with a seeded
generator, stops the way ``MLPRegressor`` does, restores the best weights under early stopping,
prints one line per epoch, and refuses to carry on from a non-finite loss. ``device="accelerate"``
builds the same net through skorch's Accelerate integration (data parallelism over processes),
sharding each global batch across them.
"""

import copy
import functools
import math
import warnings
from contextlib import contextmanager

import torch
from sklearn.exceptions import ConvergenceWarning
from torch.optim import optimizer as torch_optimizer
from skorch import NeuralNet
from skorch.callbacks import Callback, ProgressBar
from skorch.hf import AccelerateMixin


class DivergenceError(ValueError):
    """Raised when the training loss becomes non-finite (NaN or infinite)."""


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


@contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` intra-op threads (None leaves torch's setting alone)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class DeviceDataset(torch.utils.data.Dataset):
    """A tensor that lives on the training device; rows are samples.

    ``generator`` (a CPU ``torch.Generator``) drives the shuffling of the training set.
    """

    def __init__(self, X, generator=None):
        self.X = X
        self.generator = generator

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.X[i]


class DeviceBatchIterator:
    """Yield ``(x_batch, x_batch)`` slices of a ``DeviceDataset``: the target of an autoencoder is
    its input. Passed to skorch as ``iterator_train`` / ``iterator_valid``."""

    def __init__(self, dataset, batch_size, shuffle=False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        X = self.dataset.X
        n = len(X)
        if self.shuffle:
            order = torch.randperm(n, generator=self.dataset.generator).to(X.device)
            X = X[order]  # one gather per epoch, then contiguous slices
        for start in range(0, n, self.batch_size):
            xb = X[start:start + self.batch_size]
            yield xb, xb


class ShardedDeviceBatchIterator(DeviceBatchIterator):
    """Data parallelism over processes: every process draws the same seeded permutation, forms
    the same global batch of ``batch_size * num_processes`` rows and takes its own share of it.
    A last global batch too small to give every process a row is skipped on all of them (every
    process takes each optimizer step, or none does)."""

    def __init__(self, dataset, batch_size, shuffle=False, num_processes=1, process_index=0):
        super().__init__(dataset, int(batch_size) * num_processes, shuffle)
        self.num_processes = num_processes
        self.process_index = process_index

    def __iter__(self):
        for xb, _ in super().__iter__():
            if len(xb) < self.num_processes:
                continue
            part = torch.tensor_split(xb, self.num_processes)[self.process_index]
            yield part, part


class CallableLoss:
    """The criterion behind a plain callable. Accelerate wraps every ``nn.Module`` it prepares
    in ``DistributedDataParallel``, which refuses a module without parameters."""

    def __init__(self, criterion):
        self.criterion = criterion

    def __call__(self, y_pred, y_true):
        return self.criterion(y_pred, y_true)

    @property
    def training(self):
        return self.criterion.training


def make_accelerator(device):
    """An ``accelerate.Accelerator`` for ``device="accelerate"``; None for any other device."""
    if device != "accelerate":
        return None
    try:
        from accelerate import Accelerator
    except ImportError as exc:
        raise ImportError(
            "device='accelerate' needs Hugging Face Accelerate: pip install accelerate "
            "(or pip install sklearn-ae[accelerate])."
        ) from exc
    return Accelerator(cpu=not torch.cuda.is_available())


def _unwrapped(module):
    """The module itself, also while it is wrapped in ``DistributedDataParallel``."""
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def _mean_over_processes(net, value):
    """``value`` averaged over the processes of a distributed run (itself otherwise), so that
    every process takes the same decision to stop."""
    accelerator = getattr(net, "accelerator", None)
    if accelerator is None or accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor(float(value), device=accelerator.device), "mean"))


class _Holdout:
    """skorch ``train_split`` that returns a validation set prepared by the estimator."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


class Convergence(Callback):
    """MLPRegressor's stopping rule, and early stopping that restores the best weights.

    Without a validation set: stop when the training loss has not improved by ``tol`` for
    more than ``n_iter_no_change`` epochs. With one: the same on the validation score (the
    negated validation loss), keeping a copy of the best weights and restoring it at the end.
    """

    def __init__(self, tol, n_iter_no_change):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.active = True
        self.converged = False

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
            score = -row["valid_loss"]
            row["valid_score"] = score
            self.no_improvement = self.no_improvement + 1 if score < self.best_score + self.tol else 0
            if score > self.best_score:
                self.best_score = score
                self.best_state = copy.deepcopy(_unwrapped(net.module_).state_dict())
        else:
            loss = row["train_loss"] = _mean_over_processes(net, row["train_loss"])
            self.no_improvement = self.no_improvement + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
        if self.active and self.no_improvement > self.n_iter_no_change:
            self.converged = True
            raise KeyboardInterrupt  # skorch's way to end fit_loop early

    def on_train_end(self, net, **kwargs):
        if self.best_state is not None:
            _unwrapped(net.module_).load_state_dict(self.best_state)
        self.best_state = None  # never pickle a copy of the weights


class DivergenceGuard(Callback):
    """Stop at the first non-finite training loss with an error that says what to do."""

    def __init__(self, estimator_name):
        self.estimator_name = estimator_name

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        loss = net.history[-1]["batches"][-1]["train_loss"]  # already a float: no extra sync
        loss = _mean_over_processes(net, loss)  # every process raises, or none does
        if not math.isfinite(loss):
            self.fail(net, f"the training loss became {loss}")

    def on_epoch_end(self, net, **kwargs):
        # each loss is measured before its step: the last step can leave non-finite weights
        finite = torch.stack([torch.isfinite(p).all() for p in net.module_.parameters()]).all()
        if not bool(finite):
            self.fail(net, "the weights became non-finite")

    def fail(self, net, what):
        raise DivergenceError(
            f"{self.estimator_name} diverged: {what} in epoch {len(net.history)}. Lower "
            "learning_rate_init (or learning_rate), or scale the input features (e.g. with "
            "StandardScaler)."
        )


class EpochLog(Callback):
    """One plain line per epoch, in the style of scikit-learn's ``BernoulliRBM``."""

    def __init__(self, estimator_name):
        self.estimator_name = estimator_name

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        line = f"[{self.estimator_name}] Iteration {row['epoch']}, loss = {row['train_loss']:.4f}"
        if "valid_score" in row:
            line += f", validation score = {row['valid_score']:.4f}"
        line += f", time = {row['dur']:.2f}s"
        print(line, flush=True)


class TrimHistory(Callback):
    """Drop per-batch records once an epoch is summarised, so a fitted model pickles small."""

    def on_epoch_end(self, net, **kwargs):
        net.history[-1]["batches"] = []


_BATCH_HOOKS = frozenset({"on_batch_begin", "on_batch_end", "on_grad_computed"})


def _is_plain_sgd(optimizer):
    """Whether ``optimizer`` is ``torch.optim.SGD`` without dampening, Nesterov, maximisation,
    step hooks (its own or global ones) or a wrapped ``step`` (a learning-rate scheduler tracks
    the steps that way): the update ``_sgd_update`` performs, with nothing watching ``step``."""
    if type(optimizer) is not torch.optim.SGD or "step" in vars(optimizer) \
            or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return False
    if getattr(torch_optimizer, "_global_optimizer_pre_hooks", None) \
            or getattr(torch_optimizer, "_global_optimizer_post_hooks", None):
        return False
    return all(not g["nesterov"] and not g["maximize"] and g["dampening"] == 0 for g in optimizer.param_groups)


@torch.no_grad()
def _sgd_update(optimizer):
    """``torch.optim.SGD.step()`` for the plain case, in place and with the same state
    (``momentum_buffer`` per parameter), without the bookkeeping that each call of ``step`` pays:
    at batch 10 that bookkeeping costs more than the RBM's arithmetic."""
    for group in optimizer.param_groups:
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            if weight_decay:
                grad = grad.add(param, alpha=weight_decay)
            if momentum:
                state = optimizer.state[param]
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = grad.clone()
                else:
                    buffer.mul_(momentum).add_(grad)
                grad = buffer
            param.add_(grad, alpha=-lr)


class _Net(NeuralNet):
    """skorch's NeuralNet, pickled so that it loads on a machine without the training device.

    The module and criterion are handed over as instances, so skorch keeps them twice: as the
    ``module`` / ``criterion`` parameters and as ``module_`` / ``criterion_``. skorch unpickles
    only the latter with ``map_location``; the parameters are left out of the pickle and point
    back to the loaded instances.
    """

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_listener_cache", None)
        for name in ("module", "criterion"):
            if isinstance(state.get(name), torch.nn.Module):
                state[name] = None
        return state

    def _set_training(self, training=True):
        # skorch sets the mode on every batch; walking the module tree costs ~7% of a small step
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)

    def _listeners(self, method_name):
        """The callbacks that implement the per-batch hook ``method_name``.

        Three hooks run on every batch; calling each callback's inherited no-op costs more than
        the arithmetic of a small step. The list is cached for the current ``callbacks_``.
        """
        cache = self.__dict__.get("_listener_cache")
        if cache is None or cache[0] is not self.callbacks_ or cache[1] != len(self.callbacks_):
            cache = (self.callbacks_, len(self.callbacks_), {})
            self.__dict__["_listener_cache"] = cache
        found = cache[2].get(method_name)
        if found is None:
            found = [cb for _, cb in self.callbacks_
                      if getattr(type(cb), method_name, None) is not getattr(Callback, method_name)]
            cache[2][method_name] = found
        return found

    def notify(self, method_name, **cb_kwargs):
        if method_name not in _BATCH_HOOKS:
            return super().notify(method_name, **cb_kwargs)
        getattr(self, method_name)(self, **cb_kwargs)  # the net's own hook (history bookkeeping)
        for listener in self._listeners(method_name):
            getattr(listener, method_name)(self, **cb_kwargs)

    def _lean_epoch(self):
        """Whether a training epoch may skip the per-batch hooks and records: no callback but
        our divergence guard listens to them, and the step is ``_Net.train_step`` (not
        Accelerate's, which overrides it)."""
        if type(self).train_step is not _Net.train_step:
            return False
        if self._listeners("on_batch_begin") or self._listeners("on_grad_computed"):
            return False
        return all(type(cb) is DivergenceGuard for cb in self._listeners("on_batch_end"))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """A training epoch without a host round trip per batch.

        skorch reads each batch's loss back as a Python float (on CUDA, a synchronisation per
        batch) and records it with its hooks. When nothing but the divergence guard listens,
        the losses are written into one float64 buffer on the device (8 bytes a batch) and
        read back once, as the size-weighted mean, recorded as one batch of all the epoch's
        rows: the epoch's mean loss is the same, and a non-finite loss anywhere in the epoch
        still fails with ``DivergenceError``.
        """
        if not training or iterator is None or fit_params or not self._lean_epoch():
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        losses, sizes = None, []
        for batch in iterator:
            loss = step_fn(batch)["loss"].detach()
            if losses is None:
                losses = torch.empty(len(iterator), dtype=torch.float64, device=loss.device)
            losses[len(sizes)] = loss
            sizes.append(len(batch[0]))
        self.history.record(prefix + "_batch_count", len(sizes))
        if not sizes:
            return
        weights = torch.tensor(sizes, dtype=torch.float64, device=losses.device)
        mean = float(losses[:len(sizes)] @ weights) / sum(sizes)
        self.history.new_batch()
        self.history.record_batch(prefix + "_loss", mean)
        self.history.record_batch(prefix + "_batch_size", sum(sizes))
        self.notify("on_batch_end", batch=None, training=True)  # the guard checks the recorded loss

    def train_step(self, batch, **fit_params):
        """One optimizer step: skorch's, minus the closure and the gradient hook when no
        callback listens to ``on_grad_computed`` (our optimizers take no closure)."""
        if self._listeners("on_grad_computed"):
            return super().train_step(batch, **fit_params)
        optimizer = self.optimizer_
        for group in optimizer.param_groups:  # zero_grad(set_to_none=True), minus its profiler scope
            for param in group["params"]:
                param.grad = None
        step = self.train_step_single(batch, **fit_params)
        if _is_plain_sgd(optimizer):
            _sgd_update(optimizer)
        else:
            optimizer.step()
        return step

    def train_step_single(self, batch, **fit_params):
        """A module with ``train_step_gradients`` (the RBM) writes its closed-form gradients
        itself and returns ``(output, loss)``; every other module goes through autograd."""
        gradients = getattr(self.module_, "train_step_gradients", None)
        if gradients is None or fit_params:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        y_pred, loss = gradients(batch[0])
        return {"loss": loss, "y_pred": y_pred}

    def __setstate__(self, state):
        super().__setstate__(state)
        if self.module is None:
            self.module = self.module_
        if self.criterion is None:
            self.criterion = self.criterion_


class _AcceleratedNet(AccelerateMixin, _Net):
    """``_Net`` trained through skorch's Accelerate integration (``device="accelerate"``).

    The pickle carries neither the ``Accelerator`` nor its optimizer wrapper, so a model trained
    over several processes loads, predicts and trains on in one ordinary process; a later fit
    hands it the accelerator of that process (``attach``).
    """

    def attach(self, accelerator):
        """Train with ``accelerator`` from now on (after unpickling, or on a later fit)."""
        if self.accelerator is not accelerator:
            self.accelerator = accelerator
            self._unwrap_accelerator()
            optimizer = getattr(self.optimizer_, "optimizer", self.optimizer_)  # unwrap
            self.optimizer_ = accelerator.prepare(optimizer)
            self.iterator_train__num_processes = accelerator.num_processes
            self.iterator_train__process_index = accelerator.process_index
        self.device = None  # accelerate places the module; the data is already in place
        return self

    def on_train_begin(self, net, **kwargs):
        # the modules are unwrapped after each training (for inference); a later partial_fit or
        # warm start wraps them again, keeping the (already prepared) optimizer
        super().on_train_begin(net, **kwargs)
        if not self._wrapped_with_accelerator:
            for name in self._modules:
                setattr(self, name + "_", self.accelerator.prepare(getattr(self, name + "_")))
            self._wrapped_with_accelerator = True

    def _set_training(self, training=True):
        super()._set_training(training)
        self.criterion_.criterion.train(training)  # skorch sets the mode of Modules only

    def evaluation_step(self, batch, training=False):
        # every process scores the whole validation set with the same weights: no gathering
        return _Net.evaluation_step(self, batch, training=training)

    def __getstate__(self):
        optimizer = self.optimizer_
        self.optimizer_ = getattr(optimizer, "optimizer", optimizer)  # AcceleratedOptimizer
        try:
            state = super().__getstate__()
        finally:
            self.optimizer_ = optimizer
        state["accelerator"] = None
        return state


def _silent(*args, **kwargs):
    """A print sink that prints nothing (AccelerateMixin keeps skorch's PrintLog)."""


def move_net(net, device):
    """Move a fitted net (module, criterion and optimizer state) to ``device`` in place.

    A model fitted on one device and trained further on another (e.g. fitted on a CPU-only
    machine, loaded where ``device="auto"`` now means CUDA) continues with its optimizer state.
    """
    device = torch.device(device)
    if torch.device(net.device) == device:
        return net
    net.module_.to(device)
    net.criterion_.to(device)
    for state in net.optimizer_.state.values():
        for key, value in state.items():
            if torch.is_tensor(value):
                state[key] = value.to(device)
    net.device = "cpu" if device.type == "cpu" else str(device)
    return net


def build_net(module, criterion, *, optimizer, optimizer_params, batch_size, shuffle,
              device, verbose, callbacks, tol, n_iter_no_change, estimator_name, accelerator=None):
    """Build (and initialise) the skorch net that trains ``module`` with ``criterion``."""
    ours = [("divergence_guard", DivergenceGuard(estimator_name)),
            ("convergence", Convergence(tol, n_iter_no_change))]
    if verbose:
        ours.append(("epoch_log", EpochLog(estimator_name)))
    if verbose and verbose >= 2:
        ours.append(("progress_bar", ProgressBar()))
    user = [cb if isinstance(cb, tuple) else (f"user_{i}", cb) for i, cb in enumerate(callbacks or [])]
    for name, cb in user:
        if not isinstance(name, str) or not isinstance(cb, Callback):
            raise TypeError(
                "callbacks must be skorch Callback instances or (name, Callback) tuples; "
                f"got {(name, cb)!r}.")
    user = [(name, copy.deepcopy(cb)) for name, cb in user]  # the parameter is never mutated
    params = {f"optimizer__{k}": v for k, v in optimizer_params.items()}
    if accelerator is None:
        net_class = _Net
        specific = {"criterion": criterion, "iterator_train": DeviceBatchIterator,
                    "callbacks__print_log": None, "device": str(device)}
    else:
        net_class = _AcceleratedNet
        specific = {"criterion": functools.partial(CallableLoss, criterion),
                    "iterator_train": ShardedDeviceBatchIterator,
                    "iterator_train__num_processes": accelerator.num_processes,
                    "iterator_train__process_index": accelerator.process_index,
                    "callbacks__print_log__sink": _silent,  # EpochLog reports progress
                    "accelerator": accelerator, "device": None}
    net = net_class(
        module=module,
        optimizer=optimizer,
        batch_size=batch_size,
        iterator_train__shuffle=shuffle,
        iterator_valid=DeviceBatchIterator,
        train_split=None,
        callbacks=ours + user + [("trim_history", TrimHistory())],
        verbose=0,
        torch_load_kwargs={"weights_only": True},
        **params,
        **specific,
    )
    return net.initialize()


def train(net, X_train, X_valid=None, *, epochs, generator, stop=True):
    """Run up to ``epochs`` epochs of ``net`` on device tensors.

    Returns ``(converged, interrupted)``. ``stop=False`` runs every epoch (``partial_fit``).
    A ``KeyboardInterrupt`` from the user ends training with the weights trained so far.
    """
    convergence = dict(net.callbacks_)["convergence"]
    convergence.active = stop
    net.train_split = None if X_valid is None else _Holdout(DeviceDataset(X_valid))
    try:
        net.partial_fit(DeviceDataset(X_train, generator), None, epochs=epochs)
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        dict(net.callbacks_)["divergence_guard"].fail(net, f"the optimizer's step overflowed ({exc})")
    finally:
        net.train_split = None  # never keep a reference to the data
    interrupted = not convergence.converged and convergence.epochs_run < epochs
    if interrupted:
        warnings.warn(
            f"Training was interrupted after {convergence.epochs_run} epoch(s); the weights "
            "trained so far are kept.", UserWarning, stacklevel=3)
    elif stop and not convergence.converged:
        warnings.warn(
            f"Stochastic optimizer: maximum iterations ({epochs}) reached and the optimization "
            "hasn't converged yet.", ConvergenceWarning, stacklevel=3)
    return convergence.converged, interrupted
