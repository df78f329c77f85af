"""The shared estimator base: common parameters, validation, devices, the fit template,
batched inference, tags and pickling."""

import copy
import inspect
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from tqdm.auto import tqdm

from . import _accelerate, _engine
from ._likelihoods import bernoulli_log_prob_logits, gaussian_log_prob, shared_noise_for_constant_features
from ._modules import ACTIVATIONS, ReconstructionLoss

# Inference never holds more than this many rows on the device at once.
INFERENCE_BATCH_SIZE = 4096

# Below this many multiply-adds per training batch, one intra-op thread is faster on the CPU
# than torch's default (thread start-up costs more than the arithmetic it shares out).
SMALL_STEP_FLOPS = 50_000_000


def check_unit_interval(X, estimator_name, clip_tol=0.0):
    """Raise a ``ValueError`` unless every value of X lies in [0, 1] (within ``clip_tol``)."""
    data = X.data if sp.issparse(X) else X
    if data.size == 0:
        return
    lo, hi = float(data.min()), float(data.max())
    if sp.issparse(X):
        lo = min(lo, 0.0)
    if lo < -clip_tol or hi > 1.0 + clip_tol:
        raise ValueError(
            f"{estimator_name} with a Bernoulli observation model needs X in [0, 1]; the data "
            f"range from {lo:.6g} to {hi:.6g}. Scale the features first, e.g. with "
            "sklearn.preprocessing.MinMaxScaler (or Binarizer for 0/1 data)"
            + (", or use likelihood='gaussian'." if clip_tol == 0.0 else ".")
        )


class _FitContext:
    """What one call of the fit template knows while its stages run."""

    def __init__(self, **kwargs):
        self.outcome = None
        vars(self).update(kwargs)


def _column_chunks(X):
    """X a block of rows at a time (about a million values), each block a float64 tensor: no
    float64 copy of the whole of X. X is a NumPy array, a tensor or a scipy sparse matrix."""
    rows = max(1, min(INFERENCE_BATCH_SIZE, (1 << 20) // max(X.shape[1], 1)))
    for start in range(0, X.shape[0], rows):
        part = X[start:start + rows]
        if torch.is_tensor(part):
            yield part.double()
        else:
            yield torch.from_numpy(np.array(part.toarray() if sp.issparse(part) else part,
                                            dtype=np.float64))


def column_moments(X, variance=True):
    """Per-column mean and (biased) variance of X in float64, a block of rows at a time. Two
    passes (the mean, then the squared deviations): a constant column gives exactly zero."""
    n = X.shape[0]
    mean = sum(chunk.sum(0) for chunk in _column_chunks(X)) / n
    if not variance:
        return mean.cpu().numpy(), None
    squares = sum(((chunk - mean) ** 2).sum(0) for chunk in _column_chunks(X))
    return mean.cpu().numpy(), (squares / n).cpu().numpy()


def column_range(X, previous=None):
    """Per-column minimum and maximum of X (float64 arrays), a block of rows at a time, merged
    with ``previous`` (an earlier ``(minimum, maximum)``) when given."""
    low = high = None
    for chunk in _column_chunks(X):
        lo, hi = chunk.amin(0), chunk.amax(0)
        low = lo if low is None else torch.minimum(low, lo)
        high = hi if high is None else torch.maximum(high, hi)
    low, high = low.cpu().numpy(), high.cpu().numpy()
    if previous is not None:
        low, high = np.minimum(low, previous[0]), np.maximum(high, previous[1])
    return low, high


class BaseNeuralEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base for the estimators of this package. Subclasses supply the model; this class runs it.

    Hooks for subclasses: ``_build_module(n_features, generator)``, ``_build_criterion()``,
    ``_optimizer()``, ``_check_values(X)``, ``_after_train(X_tensor, incremental)``.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str],
        "precision": [StrOptions(set(_engine.PRECISIONS))],
        "callbacks": [list, None],
    }

    #: whether scipy sparse input is accepted (densified a batch at a time)
    _accept_sparse = False

    def __setstate__(self, state):
        # a model pickled before one of today's constructor parameters existed (``precision``)
        # loads with that parameter at its default, which is how it was trained
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and param.default is not inspect.Parameter.empty:
                state.setdefault(name, param.default)
        super().__setstate__(state)

    # ------------------------------------------------------------------ hooks
    def _build_module(self, n_features, generator):
        raise NotImplementedError

    def _build_criterion(self):
        raise NotImplementedError

    def _optimizer(self):
        """The optimizer class and its keyword arguments: Adam, with ``alpha`` as its (coupled)
        weight decay, the gradient of the L2 penalty ``alpha / 2 * ||theta||^2``. One parameter
        group: a second one (to spare the biases) costs a quarter more time per small batch."""
        return torch.optim.Adam, {"lr": self.learning_rate_init, "weight_decay": self.alpha,
                                  "fused": True}

    def _check_values(self, X):
        """Model-specific checks on validated input (e.g. the range of a Bernoulli model)."""

    def _check_params(self, *names):
        """Validate the parameters ``names`` where they are used (they may have been set since
        the fit), with scikit-learn's constraints and messages."""
        validate_parameter_constraints(
            {k: self._parameter_constraints[k] for k in names},
            {k: getattr(self, k) for k in names}, caller_name=type(self).__name__)

    def _before_build(self, data):
        """Statistics of the training data that a fresh network is built from."""

    def _after_train(self, X, incremental):
        """Fit the attributes that follow from the trained network (e.g. noise variances)."""

    # ---------------------------------------------------------------- helpers
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if any(not isinstance(s, Integral) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers; "
                f"got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return max(1, min(200, n_samples))
        return max(1, min(self.batch_size, n_samples))

    def _validate(self, X, reset):
        if torch.is_tensor(X):
            if X.requires_grad:
                raise ValueError(
                    f"{type(self).__name__} got a torch tensor that requires grad; pass X.detach() "
                    "(the estimator trains its own network and does not backpropagate into X).")
            X = X.cpu().numpy()  # its dtype kept: float32 in, float32 out
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32),
                          accept_sparse="csr" if self._accept_sparse else False)
        self._inferring = not reset and not _engine.in_fit()
        try:
            self._check_values(X)
        finally:
            del self._inferring
        return X

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def _to_device(self, X, device, dtype=torch.float32):
        """A whole array as a tensor on ``device`` (sparse input is densified)."""
        if sp.issparse(X):
            X = X.toarray()
        if dtype == torch.float32 and X.dtype == np.float64 and X.size:
            big = max(float(X.max()), -float(X.min()))
            if big > float(np.finfo(np.float32).max):
                raise ValueError(
                    f"{type(self).__name__} trains in float32, but X holds values as large as "
                    f"{big:.3g} in magnitude, beyond the float32 range "
                    f"({np.finfo(np.float32).max:.3g}). Scale the features first, e.g. with "
                    "sklearn.preprocessing.StandardScaler."
                )
        X = np.ascontiguousarray(X, dtype=np.float32 if dtype == torch.float32 else np.float64)
        if not X.flags.writeable:
            X = X.copy()
        return torch.from_numpy(X).to(device)

    @property
    def module_(self):
        """The trained ``torch.nn.Module`` (held by ``net_``)."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    # --------------------------------------------------------------- training
    def _threads(self, device, n_features, batch_size):
        if device.type != "cpu":
            return None
        sizes = (n_features, *self._hidden_sizes(), self.n_components)
        flops = batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        return 1 if flops < SMALL_STEP_FLOPS else None

    def _architecture(self, n_features):
        """What fixes the network's shape; a warm start with another architecture starts afresh."""
        return {"n_features": n_features, "n_components": self.n_components,
                "hidden_layer_sizes": self._hidden_sizes(), "activation": self.activation,
                "likelihood": getattr(self, "likelihood", None)}

    def _likelihood_in_use(self):
        """The fitted network's observation model during inference, the parameter's in a fit."""
        return self._fitted_likelihood() if getattr(self, "_inferring", False) else self.likelihood

    def _fitted_likelihood(self):
        """The observation model the network was trained for (``likelihood`` may have changed)."""
        return self._fitted_architecture["likelihood"]

    def _n_components_fitted(self):
        """The width of the fitted code (``n_components`` may have been changed since)."""
        return self._fitted_architecture["n_components"]

    @property
    def _n_features_out(self):
        return self._n_components_fitted()

    def _fresh(self, n_features, incremental):
        """Whether this call trains a new network: an unfitted model, a plain ``fit``, or a warm
        start after the architecture changed (with a warning; ``partial_fit`` refuses)."""
        if not self.__sklearn_is_fitted__() or not (incremental or self.warm_start):
            return True
        old, new = self._fitted_architecture, self._architecture(n_features)
        changed = [f"{k} ({old[k]!r} -> {new[k]!r})" for k in new if old.get(k) != new[k]]
        if not changed:
            return False
        what = ", ".join(changed)
        if incremental:
            raise ValueError(
                f"{type(self).__name__}.partial_fit cannot continue training after {what} changed: "
                "the fitted network has another shape. Call fit to train a new network.")
        _engine.warn(
            f"{type(self).__name__}: warm_start=True, but {what} changed since the last fit, so a new "
            "network is trained from scratch.", UserWarning)
        return True

    def _draw_seeds(self, rng):
        """Seeds drawn once per fresh fit, in a fixed order (subclasses add their own after)."""
        self._init_seed, self._split_seed, self._shuffle_seed = (
            int(s) for s in rng.randint(np.iinfo(np.int32).max, size=3))

    def _n_stages(self, n_features):
        """How many nets ``_stages`` trains (for the progress bar's total)."""
        return 1

    def _epochs_trained(self):
        return self.n_iter_

    def _stops_early(self, incremental):
        """Whether ``fit`` ends at convergence (``tol`` / ``n_iter_no_change``) before ``max_iter``."""
        return not incremental

    def _uses_validation(self, incremental):
        return not incremental and getattr(self, "early_stopping", False)

    def _callbacks(self, ctx, module):
        return (_engine.our_callbacks(type(self).__name__, tol=self.tol,
                                      n_iter_no_change=self.n_iter_no_change, verbose=self.verbose,
                                      data_scale=ctx.data_scale, **self._guard_settings(module))
                + _engine.user_callbacks(self.callbacks))

    def _guard_settings(self, module):
        """Extra settings of the divergence guard and the epoch lines for the net of ``module``."""
        return {}

    def _allocate(self, build, *args):
        """``build(*args)``, with an allocation failure (layers too large) as a clear error."""
        try:
            return build(*args)
        except (RuntimeError, MemoryError) as exc:
            if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
                raise
            raise ValueError(
                f"Could not allocate the network for {self.hidden_layer_sizes!r} hidden layers and "
                f"n_components={self.n_components}: {exc}") from exc

    def _new_net(self, module, ctx, **kwargs):
        """A skorch net around ``module`` (the accelerate variant when asked for)."""
        optimizer, optimizer_params = self._optimizer()
        criterion = self._build_criterion()
        specific = {"device": str(ctx.device)}
        if ctx.accelerator is not None:
            criterion, specific = _accelerate.net_options(ctx.accelerator, criterion)
        return _engine.build_net(
            module, criterion, optimizer=optimizer, optimizer_params=optimizer_params,
            batch_size=ctx.batch_size, shuffle=self.shuffle, verbose=self.verbose,
            callbacks=self._callbacks(ctx, module), **{**specific, **kwargs})

    def _continue_net(self, net, ctx):
        """Prepare a fitted net to train on, after a snapshot that a failed call restores: on the
        device asked for now, with the current batch size, callbacks, criterion settings and
        optimizer hyperparameters (its state, e.g. momentum, carries on)."""
        if (ctx.accelerator is not None) != hasattr(net, "attach"):
            raise ValueError(
                f"device={self.device!r} cannot continue training a model that was "
                f"{'' if ctx.accelerator is None else 'not '}trained with device='accelerate'; "
                "fit afresh (fit with warm_start=False) to switch between device='accelerate' "
                "and the other devices.")
        ctx.snapshots.append(_engine.NetSnapshot(net))
        if ctx.accelerator is not None:
            net.attach(ctx.accelerator)
        else:
            _engine.move_net(net, ctx.device)
        net.set_params(batch_size=ctx.batch_size, verbose=self.verbose,
                       callbacks=self._callbacks(ctx, _engine.unwrapped(net.module_)))
        net.initialize_callbacks()  # set_params initialises the callbacks it replaces, not the new ones
        # skorch's set_params refuses iterator parameters on an initialised net; it reads them
        # from these attributes when it builds each epoch's iterator
        net.iterator_train__shuffle = self.shuffle
        _engine.set_optimizer_params(net, self._optimizer()[1])
        criterion = net.criterion_
        self._update_criterion(criterion.criterion if isinstance(criterion, _accelerate.CallableLoss)
                               else criterion)
        return net

    def _update_criterion(self, criterion):
        """Bring a fitted net's criterion up to the current parameters (e.g. ``beta``)."""

    def _train(self, X, incremental, snapshots):
        """The fit template, shared by every estimator: draw the seeds of a fresh fit, run the
        training stages (``_stages``: one net, the layers of a stack, pretraining then
        fine-tuning) on device-resident data, then fit the attributes that follow from the
        trained nets (``_finish``). A Ctrl-C ends every remaining stage."""
        session = _engine.current_session()
        accelerator = _accelerate.make_accelerator(self.device) if self._accepts_accelerate else None
        device = accelerator.device if accelerator is not None else _engine.resolve_device(self.device)
        n_samples, n_features = X.shape
        fresh = self._fresh(n_features, incremental)
        if fresh:
            if accelerator is not None and accelerator.num_processes > 1 and self.random_state is None:
                raise ValueError(
                    f"device='accelerate' over {accelerator.num_processes} processes needs an int "
                    "random_state: every process must draw the same shuffling of the data.")
            self._draw_seeds(check_random_state(self.random_state))
            generator = torch.Generator().manual_seed(self._shuffle_seed)
        else:  # a copy: the fitted model's generator moves on only if this call succeeds
            generator = torch.Generator()
            generator.set_state(self._shuffle_generator.get_state())
        batch_size = self._batch_size(n_samples)
        data = X if sp.issparse(X) else self._to_device(X, device)
        ctx = _FitContext(X=X, fresh=fresh, incremental=incremental, device=device, accelerator=accelerator,
                          batch_size=batch_size, generator=generator, snapshots=snapshots,
                          data_scale=_engine.data_scale(data))
        epochs = 1 if incremental else self.max_iter
        session.progress(self._n_stages(n_features) * epochs)
        with _engine.torch_threads(self._threads(device, n_features, batch_size)):
            for net, train_set, valid_set in self._stages(data, ctx):
                if session.interrupted:
                    break
                with _engine.training_precision(self.precision, device):  # training only, not _finish
                    ctx.outcome = _engine.train(net, train_set, valid_set, epochs=epochs,
                                                stop=self._stops_early(incremental),
                                                stop_on_validation=self._uses_validation(incremental),
                                                precision=self.precision)
                if hasattr(net, "detach"):  # inference runs in this process, on its device
                    net.detach(device)
                if ctx.outcome == "interrupted":
                    break
            self._shuffle_generator = generator
            self._fitted_architecture = self._architecture(n_features)
            self._finish(data, ctx)
        del data
        if session.interrupted:  # also by a Ctrl-C that came between the training loops
            ctx.outcome = "interrupted"
        _engine.report(ctx.outcome, type(self).__name__, self._epochs_trained(), epochs)

    _accepts_accelerate = True

    def _datasets(self, data, ctx):
        """The training set and, under early stopping (or a callback that monitors a validation
        metric), the validation set: a split by index, no copies of the data."""
        if not (self._uses_validation(ctx.incremental) or _engine.needs_validation(self.callbacks)):
            return _engine.DeviceDataset(data, ctx.generator, device=ctx.device), None
        train_rows, valid_rows = self._holdout(data.shape[0])
        return (_engine.DeviceDataset(data, ctx.generator, indices=train_rows, device=ctx.device),
                _engine.DeviceDataset(data, indices=valid_rows, device=ctx.device))

    def _stages(self, data, ctx):
        """One net, trained on ``data``."""
        if ctx.fresh:
            self._before_build(data)
            init = torch.Generator().manual_seed(self._init_seed)
            net = self._new_net(self._allocate(self._build_module, data.shape[1], init), ctx)
        else:
            net = self._continue_net(self.net_, ctx)
        self.net_ = net
        train_set, valid_set = self._datasets(data, ctx)
        yield net, train_set, valid_set

    def _finish(self, data, ctx):
        """The fitted attributes that follow from the trained net."""
        self._record_history(self.net_)
        self._after_train(data, ctx.incremental)

    def _record_history(self, net):
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history[:, "train_loss"]] if len(history) else []
        scores = [row["valid_score"] for row in history if "valid_score" in row]
        self.validation_scores_ = scores or None
        self.best_validation_score_ = max(scores) if scores else None
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = None if scores or not self.loss_curve_ else min(self.loss_curve_)

    def _holdout(self, n_samples):
        """Row indices of the training and the validation part (seeded at the fresh fit)."""
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        if n_valid < 1 or n_samples - n_valid < 1:
            raise ValueError(
                f"early_stopping=True needs at least one training and one validation sample; "
                f"got n_samples={n_samples} with validation_fraction={self.validation_fraction}."
            )
        order = np.random.RandomState(self._split_seed).permutation(n_samples)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    def _fit(self, X, incremental):
        """Validate, then train inside one fit session. Any exception leaves the estimator
        exactly as it was before the call: its attributes, and the nets that the call trained
        further (weights, optimizer state, history), are put back."""
        saved = dict(self.__dict__)
        random_state = self.random_state  # a RandomState instance advances as seeds are drawn
        rng_state = random_state.get_state() if isinstance(random_state, np.random.RandomState) else None
        snapshots = []
        try:
            if incremental and self.__sklearn_is_fitted__():
                self._validate_params()  # scikit-learn validates a partial_fit's first call only
            with _engine.fit_session(self.verbose, type(self).__name__):
                fitted = self.__sklearn_is_fitted__()
                X = self._validate(X, reset=not (fitted and (incremental or self.warm_start)))
                self._train(X, incremental, snapshots)
        except BaseException:
            for snapshot in reversed(snapshots):
                snapshot.restore()
            self.__dict__.clear()
            self.__dict__.update(saved)
            if rng_state is not None:
                random_state.set_state(rng_state)
            raise
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        See Also
        --------
        partial_fit : One epoch over a batch, continuing from the current model.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X)
        >>> ae.n_iter_, len(ae.loss_curve_)
        (3, 3)
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the model with one pass (epoch) over X.

        The first call initialises the model; later calls continue from it. Early stopping does
        not apply. If the call fails (for instance the loss diverges), the model is left exactly
        as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.

        See Also
        --------
        fit : Train until convergence (or ``max_iter`` epochs).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, random_state=0)
        >>> for chunk in (X[:900], X[900:]):
        ...     ae = ae.partial_fit(chunk)
        >>> ae.n_iter_
        2
        """
        return self._fit(X, incremental=True)

    # -------------------------------------------------------------- inference
    def _inference_module(self, dtype):
        """The trained module in eval mode, in ``dtype`` (a copy unless it is float32)."""
        module = self.net_.module_
        if dtype == np.float64:
            module = copy.deepcopy(module).to(torch.float64)
        return module.eval()

    def _device_(self):
        return torch.device(self.net_.device)

    def _progress(self, total, description, unit="step"):
        """A tqdm progress bar for long scoring, shown when ``verbose`` is set."""
        return tqdm(total=total, desc=f"[{type(self).__name__}] {description}", unit=unit,
                    disable=not self.verbose)

    def _map_batches(self, X, fn, width=None, progress=None):
        """Apply ``fn(module, x_batch)`` to X a batch at a time; return an array of X's dtype.

        Memory on the device is bounded by ``INFERENCE_BATCH_SIZE`` rows, not by ``len(X)``.
        ``progress`` (a description) shows a progress bar over the rows when ``verbose`` is set.
        """
        dtype = X.dtype
        module = self._inference_module(dtype)
        device = self._device_()
        n = X.shape[0]
        out = np.empty((n,) if width is None else (n, width), dtype=dtype)
        bar = self._progress(n, progress, unit="row") if progress else None
        with torch.inference_mode():
            for rows in gen_batches(n, INFERENCE_BATCH_SIZE):
                xb = X[rows]
                if sp.issparse(xb):
                    xb = xb.toarray()
                xb = np.ascontiguousarray(xb)
                if not xb.flags.writeable:  # torch cannot wrap read-only memory
                    xb = xb.copy()
                xt = torch.from_numpy(xb).to(device)
                res = fn(module, xt).cpu().numpy()
                if np.isnan(res).any():
                    raise ValueError(
                        f"{type(self).__name__} computed NaN from finite input (largest magnitude "
                        f"{float(np.abs(xb).max()):.3g}): the values overflow the model's {dtype} "
                        "arithmetic, or the fitted weights are unusable. Scale the input like the "
                        "training data, pass float64, or refit with a lower learning rate.")
                out[rows] = res
                if bar is not None:
                    bar.update(len(res))
        if bar is not None:
            bar.close()
        return out

    def _decoder_mean(self, Z):
        """The decoder's mean for codes Z: probabilities for a Bernoulli model, else the output."""
        Z = self._check_codes(Z)
        bern = self._fitted_likelihood() == "bernoulli"
        return self._map_batches(
            Z, lambda m, z: torch.sigmoid(m.decode(z)) if bern else m.decode(z), self.n_features_in_)

    def _running_mean(self, name, fn, X, incremental):
        """Mean over training rows of ``fn(module, x_batch)`` (one vector per row), in batches.

        ``partial_fit`` calls accumulate into the mean of every row seen since the last ``fit``,
        each call's rows evaluated with the weights that call ended with.
        """
        module = self.net_.module_
        total = None
        with torch.inference_mode():
            for rows in gen_batches(X.shape[0], INFERENCE_BATCH_SIZE):
                part = fn(module, X[rows]).sum(0, dtype=torch.float64)
                total = part if total is None else total + part
        total, n = total.cpu().numpy(), X.shape[0]
        sums = getattr(self, "_running_sums", {})
        if incremental and name in sums:
            total, n = total + sums[name][0], n + sums[name][1]
        self._running_sums = {**sums, name: (total, n)}
        return total / n

    def _constant_features(self, X, incremental):
        """Mask of the features that took a single value in every training row seen since the
        last ``fit`` (``partial_fit`` calls merge their ranges)."""
        previous = getattr(self, "_training_range", None) if incremental else None
        self._training_range = column_range(X, previous)
        return self._training_range[0] == self._training_range[1]

    @staticmethod
    def _check_n_samples(n_samples):
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")

    def _check_codes(self, Z):
        check_is_fitted(self)
        Z = check_array(Z, dtype=(np.float64, np.float32))
        if Z.shape[1] != self._n_components_fitted():
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform is "
                f"expecting {self._n_components_fitted()} features (n_components) as input."
            )
        return Z

    def score(self, X, y=None):
        """Mean of ``score_samples(X)``: the average log-likelihood, in nats (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean log-likelihood per sample, in nats.

        See Also
        --------
        score_samples : The log-likelihood of each sample.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X)
        >>> isinstance(ae.score(X), float)
        True
        """
        return float(np.mean(self.score_samples(X)))

    # ---------------------------------------------------------------- sklearn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = self._accept_sparse
        return tags


class BaseReconstructionAutoencoder(BaseNeuralEstimator):
    """Deterministic autoencoders whose ``score_samples`` is a reconstruction log-likelihood.

    ``likelihood="gaussian"``: log N(x; decoder(encoder(x)), diag(noise_variance_)), the noise
    fitted by maximum likelihood on the training residuals, one variance per feature or one for
    all (``noise_model``); a feature constant in the training data takes the others' mean.
    ``likelihood="bernoulli"``: the Bernoulli log-probability of x under the decoder's
    probabilities. Either way this is the likelihood of x *given its own code*, not a density
    over the data space.
    """

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "noise_model": [StrOptions({"isotropic", "diagonal"})],
    }

    #: relative floor on the noise variance, as a fraction of the mean feature variance
    _variance_floor = 1e-6

    def _build_criterion(self):
        return ReconstructionLoss(self.likelihood)

    def _check_values(self, X):
        if self._likelihood_in_use() == "bernoulli":
            check_unit_interval(X, type(self).__name__)

    def _after_train(self, X, incremental):
        if self._fitted_likelihood() != "gaussian":
            return
        mean_sq = self._running_mean("residual", lambda m, x: (x - m(x)[0]) ** 2, X, incremental)
        if not (incremental and hasattr(self, "_noise_floor")):
            feature_var = float(column_moments(X)[1].mean())
            self._noise_floor = max(self._variance_floor * feature_var, 1e-12)
        self._check_params("noise_model")
        # the training range is kept under either model, so that a later partial_fit with
        # noise_model="diagonal" merges with every row seen since the fit
        constant = self._constant_features(X, incremental)
        if self.noise_model == "isotropic":
            variance = np.full_like(mean_sq, max(float(mean_sq.mean()), self._noise_floor))
        else:
            variance = shared_noise_for_constant_features(np.maximum(mean_sq, self._noise_floor), constant)
        with torch.no_grad():
            self.net_.module_.noise_variance.copy_(torch.as_tensor(variance))

    @property
    def noise_variance_(self):
        """The fitted per-feature noise variance of the Gaussian likelihood (None for Bernoulli);
        part of the module's state, so it travels with ``net_.save_params``."""
        check_is_fitted(self)
        if self._fitted_likelihood() != "gaussian":
            return None
        return self.net_.module_.noise_variance.detach().cpu().numpy().copy()

    def transform(self, X):
        """Encode X: the code z = encoder(x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Same dtype as X (float32 or float64).

        See Also
        --------
        inverse_transform : Decode codes back to the input space.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X)
        >>> ae.transform(X[:5]).shape
        (5, 2)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._map_batches(X, lambda m, x: m.encode(x), self._n_components_fitted())

    def inverse_transform(self, X):
        """Decode codes back to the input space: the decoder's mean (probabilities for
        ``likelihood="bernoulli"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The decoder's mean for each code.

        See Also
        --------
        transform : Encode data into codes.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X)
        >>> ae.inverse_transform(ae.transform(X[:5])).shape
        (5, 64)
        """
        return self._decoder_mean(X)

    def score_samples(self, X):
        """Log-likelihood of each sample under the decoder's observation model, in nats.

        For ``likelihood="gaussian"`` this is sum_j log N(x_j; xhat_j, noise_variance_[j]) with
        xhat = decoder(encoder(x)); for ``likelihood="bernoulli"`` it is
        sum_j x_j log xhat_j + (1 - x_j) log(1 - xhat_j). It is the likelihood of x given its own
        code: like ``PCA.score_samples`` it is higher for typical data and lower for outliers, but
        unlike PCA's it does not integrate over codes, so it is not a normalised density over the
        data space and is not comparable with a VAE's or an RBM's log p(x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Log-likelihood of each sample, in nats (higher is more typical).

        See Also
        --------
        score : The mean of ``score_samples``.
        sklearn.decomposition.PCA.score_samples : The log-density of probabilistic PCA.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_ae import AutoencoderTransformer
        >>> X = load_digits().data / 16
        >>> ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X)
        >>> ae.score_samples(X[:5]).shape
        (5,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if self._fitted_likelihood() == "bernoulli":
            return self._map_batches(X, lambda m, x: bernoulli_log_prob_logits(x, m(x)[0]))

        def fn(m, x):
            return gaussian_log_prob(x, m(x)[0], m.noise_variance.to(x.dtype))

        return self._map_batches(X, fn)
