"""The shared estimator base: common parameters, validation, devices, the fit template,
batched inference, tags and pickling."""

import copy
from contextlib import contextmanager
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
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _engine
from ._likelihoods import bernoulli_log_prob_logits, gaussian_log_prob
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
        "callbacks": [list, None],
    }

    #: whether scipy sparse input is accepted (densified a batch at a time)
    _accept_sparse = False

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
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32),
                          accept_sparse="csr" if self._accept_sparse else False)
        self._check_values(X)
        return X

    @contextmanager
    def _input_attributes_kept_on_error(self):
        """Undo what validation recorded (``n_features_in_``, ``feature_names_in_``) when a fit
        fails, so a fitted model stays consistent and an unfitted one stays unfitted."""
        names = ("n_features_in_", "feature_names_in_")
        saved = {k: self.__dict__[k] for k in names if k in self.__dict__}
        try:
            yield
        except Exception:
            for k in names:
                self.__dict__.pop(k, None)
            self.__dict__.update(saved)
            raise

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

    @property
    def _n_features_out(self):
        return self.n_components

    # --------------------------------------------------------------- training
    def _threads(self, device, n_features, batch_size):
        if device.type != "cpu":
            return None
        sizes = (n_features, *self._hidden_sizes(), self.n_components)
        flops = batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        return 1 if flops < SMALL_STEP_FLOPS else None

    def _train(self, X, incremental):
        accelerator = _engine.make_accelerator(self.device)  # None unless device="accelerate"
        device = accelerator.device if accelerator is not None else _engine.resolve_device(self.device)
        n_samples, n_features = X.shape
        fitted = hasattr(self, "net_")
        fresh = not fitted or not (incremental or self.warm_start)
        batch_size = self._batch_size(n_samples)

        if fresh:
            if accelerator is not None and accelerator.num_processes > 1 and self.random_state is None:
                raise ValueError(
                    f"device='accelerate' over {accelerator.num_processes} processes needs an int "
                    "random_state: every process must draw the same shuffling of the data.")
            rng = check_random_state(self.random_state)
            init_generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
            self._split_seed = int(rng.randint(np.iinfo(np.int32).max))
            shuffle_generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
            optimizer, optimizer_params = self._optimizer()
            try:
                module = self._build_module(n_features, init_generator)
            except (RuntimeError, MemoryError) as exc:
                if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
                    raise
                raise ValueError(
                    f"Could not allocate the network for {n_features} features, hidden_layer_sizes="
                    f"{self.hidden_layer_sizes!r} and n_components={self.n_components}: {exc}"
                ) from exc
            net = _engine.build_net(
                module, self._build_criterion(),
                optimizer=optimizer, optimizer_params=optimizer_params,
                batch_size=batch_size, shuffle=self.shuffle, device=device,
                verbose=self.verbose, callbacks=self.callbacks, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change, estimator_name=type(self).__name__,
                accelerator=accelerator)
            snapshot = None
        else:
            net = self.net_
            if (accelerator is not None) != isinstance(net, _engine._AcceleratedNet):
                raise ValueError(
                    f"device={self.device!r} cannot continue training a model that was "
                    f"{'' if accelerator is None else 'not '}trained with device='accelerate'; "
                    "fit afresh (fit with warm_start=False) to switch between device='accelerate' "
                    "and the other devices.")
            if accelerator is not None:
                net.attach(accelerator)
            else:  # continue on the device asked for now, not the one it was fitted on
                _engine.move_net(net, device)
            net.set_params(batch_size=batch_size)
            shuffle_generator = self._shuffle_generator
            snapshot = (copy.deepcopy(net.module_.state_dict()),
                        copy.deepcopy(net.optimizer_.state_dict()),
                        shuffle_generator.get_state(), len(net.history))

        X_valid = None
        X_train = X
        if self.early_stopping and not incremental:
            X_train, X_valid = self._holdout(X)
        X_train_t = self._to_device(X_train, device)
        X_valid_t = None if X_valid is None else self._to_device(X_valid, device)
        try:
            with _engine.torch_threads(self._threads(device, n_features, batch_size)):
                _engine.train(net, X_train_t, X_valid_t,
                              epochs=1 if incremental else self.max_iter,
                              generator=shuffle_generator, stop=not incremental)
        except _engine.DivergenceError:
            if snapshot is not None:  # leave the previously fitted model exactly as it was
                _engine._unwrapped(net.module_).load_state_dict(snapshot[0])
                net.optimizer_.load_state_dict(snapshot[1])
                shuffle_generator.set_state(snapshot[2])
                del net.history[snapshot[3]:]
            raise
        finally:
            if accelerator is not None:  # inference runs in this process, on its device
                net._unwrap_accelerator()
                net.device = "cpu" if device.type == "cpu" else str(device)  # not "cpu:0"
        del X_train_t, X_valid_t

        self.net_ = net
        self._shuffle_generator = shuffle_generator
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history[:, "train_loss"]]
        scores = [row["valid_score"] for row in history if "valid_score" in row]
        if scores:
            self.validation_scores_ = scores
            self.best_validation_score_ = max(scores)
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        with _engine.torch_threads(self._threads(device, n_features, batch_size)):
            self._after_train(self._to_device(X, device) if not sp.issparse(X) else X, incremental)

    def _holdout(self, X):
        n_samples = X.shape[0]
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        if n_valid < 1 or n_samples - n_valid < 1:
            raise ValueError(
                f"early_stopping=True needs at least one training and one validation sample; "
                f"got n_samples={n_samples} with validation_fraction={self.validation_fraction}."
            )
        order = np.random.RandomState(self._split_seed).permutation(n_samples)
        return X[np.sort(order[n_valid:])], X[np.sort(order[:n_valid])]

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
        with self._input_attributes_kept_on_error():
            X = self._validate(X, reset=not (self.warm_start and hasattr(self, "net_")))
            self._train(X, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the model with one pass (epoch) over X.

        The first call initialises the model; later calls continue from it. Early stopping does
        not apply. If the loss diverges, the model is left exactly as it was before the call.

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
        with self._input_attributes_kept_on_error():
            X = self._validate(X, reset=not hasattr(self, "net_"))
            self._train(X, incremental=True)
        return self

    # -------------------------------------------------------------- inference
    def _inference_module(self, dtype):
        """The trained module in eval mode, in ``dtype`` (a copy unless it is float32)."""
        module = self.net_.module_
        if dtype == np.float64:
            module = copy.deepcopy(module).to(torch.float64)
        return module.eval()

    def _device_(self):
        return torch.device(self.net_.device)

    def _map_batches(self, X, fn, width=None):
        """Apply ``fn(module, x_batch)`` to X a batch at a time; return an array of X's dtype.

        Memory on the device is bounded by ``INFERENCE_BATCH_SIZE`` rows, not by ``len(X)``.
        """
        dtype = X.dtype
        module = self._inference_module(dtype)
        device = self._device_()
        n = X.shape[0]
        out = np.empty((n,) if width is None else (n, width), dtype=dtype)
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
        return out

    def _decoder_mean(self, Z):
        """The decoder's mean for codes Z: probabilities for a Bernoulli model, else the output."""
        Z = self._check_codes(Z)
        bern = self.likelihood == "bernoulli"
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

    @staticmethod
    def _check_n_samples(n_samples):
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")

    def _check_codes(self, Z):
        check_is_fitted(self)
        Z = check_array(Z, dtype=(np.float64, np.float32))
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform is "
                f"expecting {self.n_components} features (n_components) as input."
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

    ``likelihood="gaussian"``: log N(x; decoder(encoder(x)), diag(noise_variance_)), with the
    per-feature noise variance fitted by maximum likelihood on the training residuals.
    ``likelihood="bernoulli"``: the Bernoulli log-probability of x under the decoder's
    probabilities. Either way this is the likelihood of x *given its own code*, not a density
    over the data space.
    """

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
    }

    #: relative floor on the noise variance, as a fraction of the mean feature variance
    _variance_floor = 1e-6

    def _build_criterion(self):
        return ReconstructionLoss(self.likelihood)

    def _check_values(self, X):
        if self.likelihood == "bernoulli":
            check_unit_interval(X, type(self).__name__)

    def _after_train(self, X, incremental):
        if self.likelihood != "gaussian":
            self.noise_variance_ = None
            return
        mean_sq = self._running_mean("residual", lambda m, x: (x - m(x)[0]) ** 2, X, incremental)
        if not (incremental and hasattr(self, "_noise_floor")):
            with torch.inference_mode():
                feature_var = X.double().var(0, unbiased=False).mean() if X.shape[0] > 1 else 0.0
            self._noise_floor = max(self._variance_floor * float(feature_var), 1e-12)
        self.noise_variance_ = np.maximum(mean_sq, self._noise_floor)

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
        return self._map_batches(X, lambda m, x: m.encode(x), self.n_components)

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
        if self.likelihood == "bernoulli":
            return self._map_batches(X, lambda m, x: bernoulli_log_prob_logits(x, m(x)[0]))
        variance = self.noise_variance_

        def fn(m, x):
            return gaussian_log_prob(x, m(x)[0], torch.as_tensor(variance, dtype=x.dtype, device=x.device))

        return self._map_batches(X, fn)
