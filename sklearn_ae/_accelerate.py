"""``device="accelerate"``: the same training through skorch's Accelerate integration (data
parallelism over processes), each global batch sharded across them."""

import functools

import torch
from skorch.hf import AccelerateMixin

from ._engine import DeviceBatchIterator, _Net


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


class AcceleratedNet(AccelerateMixin, _Net):
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

    def detach(self, device):
        """Unwrap the modules for inference in this process, on ``device``."""
        self._unwrap_accelerator()
        self.device = "cpu" if device.type == "cpu" else str(device)  # not "cpu:0"

    def on_train_begin(self, net, **kwargs):
        # the modules are unwrapped after each training (for inference); a later partial_fit or
        # warm start wraps them again, keeping the (already prepared) optimizer
        super().on_train_begin(net, **kwargs)
        if not self._wrapped_with_accelerator:
            for name in self._modules:
                setattr(self, name + "_", self.accelerator.prepare(getattr(self, name + "_")))
            self._wrapped_with_accelerator = True

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


def net_options(accelerator, criterion):
    """The criterion and the other settings ``build_net`` needs to train through ``accelerator``."""
    return functools.partial(CallableLoss, criterion), {
            "net_class": AcceleratedNet,
            "iterator_train": ShardedDeviceBatchIterator,
            "iterator_train__num_processes": accelerator.num_processes,
            "iterator_train__process_index": accelerator.process_index,
            "callbacks__print_log__sink": _silent,  # the progress bar and EpochLog report progress
            "accelerator": accelerator, "device": None}
