"""VAETransformer: a variational autoencoder as a scikit-learn transformer and density model."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import BaseNeuralEstimator, check_unit_interval, column_moments
from ._docstrings import shared_docstring
from ._likelihoods import (elbo, iwae_bound_from_chunks, kl_diagonal_normal_standard_normal,
                           shared_noise_for_constant_features, vae_log_weights)
from ._modules import ELBOLoss, GaussianVAE

# One importance-sampling chunk holds at most this many values per layer on the device:
# chunk * batch * widest layer <= IWAE_CHUNK_ELEMENTS.
IWAE_CHUNK_ELEMENTS = 2**24


def _signed(c):
    """A 64-bit unsigned constant as the int64 torch computes with (arithmetic wraps)."""
    return c - 2**64 if c >= 2**63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(h, s):
    return (h >> s) & ((1 << (64 - s)) - 1)  # logical, not arithmetic, shift of int64


def _mix(h):
    """The splitmix64 finaliser: a bijective 64-bit hash, elementwise on int64 tensors."""
    h = (h ^ _shift_right(h, 30)) * _MIX1
    h = (h ^ _shift_right(h, 27)) * _MIX2
    return h ^ _shift_right(h, 31)


def row_keys(x, seed):
    """One 64-bit key per row of ``x``, a hash of its values (rounded to float32) and ``seed``."""
    # (batch, n_features); adding 0.0 turns -0.0 into 0.0, so both get the same key
    bits = (x.to(torch.float32) + 0.0).view(torch.int32).to(torch.int64)
    position = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=torch.int64) * _GOLDEN
    return _mix(_mix(bits + position).sum(dim=1) ^ seed)  # (batch,)


def keyed_normal(keys, start, n_samples, n_dims, dtype):
    """Standard-normal noise of shape (n_samples, batch, n_dims) for samples ``start``,
    ``start + 1``, ... of each row: a counter-based generator, so the value for (row, sample,
    dimension) depends on those and the row's key only (not on the batch or the chunking)."""
    counter = torch.arange(start * n_dims, (start + n_samples) * n_dims, device=keys.device,
                           dtype=torch.int64).reshape(n_samples, 1, n_dims)
    h = _mix(keys[None, :, None] ^ _mix(counter))  # (n_samples, batch, n_dims)
    # Box-Muller on the two 32-bit halves of the hash: u1 in (0, 1], u2 in [0, 1)
    u1 = (_shift_right(h, 32).to(torch.float64) + 0.5) * 2.0**-32
    u2 = (h & 0xFFFFFFFF).to(torch.float64) * 2.0**-32
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)).to(dtype)


@shared_docstring
class VAETransformer(BaseNeuralEstimator):
    """Variational autoencoder (Kingma & Welling, 2014), trained in PyTorch, as a scikit-learn
    transformer with a log-likelihood.

    The encoder q(z | x) is a diagonal Gaussian whose mean and log-variance are two linear heads
    on an MLP of ``hidden_layer_sizes``; the prior p(z) is a standard normal over
    ``n_components`` dimensions; the decoder mirrors the encoder and gives p(x | z), Bernoulli
    (logits) or Gaussian (a mean and a learned per-feature variance, ``noise_variance_``, bounded
    below so that densities stay finite). Training maximises the evidence lower bound (ELBO)
    E_q[log p(x | z)] - beta * KL(q(z | x) || p(z)) with the reparameterisation trick and the KL in
    closed form.

    ``transform`` returns the posterior mean E[z | x] (deterministic), ``inverse_transform`` the
    decoder mean, ``sample`` draws new data, and ``score_samples`` is the importance-weighted
    (IWAE) estimate of log p(x) with ``n_importance_samples`` samples, in nats.

    Parameters
    ----------
    n_components : int, default=8
        Dimension of the latent space (the number of features ``transform`` returns).
    %(hidden_layer_sizes)s
    %(activation)s
    %(likelihood)s
    beta : float, default=1.0
        Weight of the KL term in the training objective (beta-VAE, Higgins et al., 2017).
        ``score_samples`` and ``elbo`` always use the unweighted model.
    n_importance_samples : int, default=500
        Number K of importance samples of ``score_samples`` (and of the Monte Carlo average in
        ``elbo``). Larger K gives a tighter, costlier estimate; it can be changed after fitting.
    %(training_parameters)s

    Attributes
    ----------
    %(fit_attributes)s
    loss_curve_ : list of float
        Mean training loss per epoch: the negative beta-ELBO, in nats per sample.
    %(training_attributes)s
    noise_variance_ : ndarray of shape (n_features_in_,) or None
        Learned per-feature variance of the Gaussian decoder (None for Bernoulli).
    %(net_)s
    %(module_)s

    See Also
    --------
    AutoencoderTransformer : A deterministic autoencoder.
    sklearn.decomposition.FactorAnalysis : The linear-Gaussian latent variable model.
    sklearn.decomposition.PCA : Probabilistic PCA's log-likelihood through ``score_samples``.

    Notes
    -----
    The K importance samples of a row come from a counter-based generator keyed by a hash of
    the row's values and a seed fixed at fit: rows get independent noise, yet a row's score
    depends only on that row and the fitted model, never on the batch, the order of the rows,
    the chunking or the call. The estimate is a stochastic lower bound on log p(x) that tightens
    as K grows (Burda et al., 2016).

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-encoding variational Bayes", ICLR 2014.
    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance weighted autoencoders", ICLR 2016.
    I. Higgins et al., "beta-VAE: learning basic visual concepts with a constrained variational
    framework", ICLR 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_ae import VAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_iter=5, n_importance_samples=10,
    ...                      random_state=0, device="cpu")
    >>> vae.fit_transform(X / 16).shape
    (1797, 2)
    >>> vae.score_samples(X[:3] / 16).shape
    (3,)
    >>> vae.sample(4, random_state=0).shape
    (4, 64)
    """

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    }

    #: floor on the decoder variance, as a fraction of the mean feature variance of the data
    _variance_floor = 1e-3

    def __init__(self, n_components=8, *, hidden_layer_sizes=(128, 64), activation="tanh",
                 likelihood="gaussian", beta=1.0, n_importance_samples=500, alpha=1e-4,
                 batch_size="auto", learning_rate_init=1e-3, max_iter=300, tol=1e-4,
                 n_iter_no_change=10, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=0, warm_start=False, device="auto",
                 precision="float32", callbacks=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.beta = beta
        self.n_importance_samples = n_importance_samples
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    # ------------------------------------------------------------------ hooks
    def _check_values(self, X):
        if self._likelihood_in_use() == "bernoulli":
            check_unit_interval(X, type(self).__name__)

    def _before_build(self, data):
        # statistics of the data that start the decoder and bound its variance from below
        self._data_mean, self._data_variance = column_moments(data)

    def _build_module(self, n_features, generator):
        noise_seed, score_seed = (int(s) for s in torch.randint(2**62, (2,), generator=generator))
        mean_variance = float(self._data_variance.mean())
        floor = self._noise_floor = max(self._variance_floor * mean_variance, 1e-12)
        return GaussianVAE(
            n_features, self._hidden_sizes(), self.n_components, self.activation,
            self.likelihood, generator, noise_seed, score_seed=score_seed, variance_floor=floor,
            init_mean=self._data_mean,
            init_variance=np.maximum(self._data_variance, 2 * floor))

    def _after_train(self, X, incremental):
        # a feature constant in the training data gets the shared noise level, as in the
        # deterministic autoencoders: its learned variance sinks to the floor during training and
        # would make one new value cost thousands of nats. The learned variance itself is set
        # there (a parameter: save_params carries it, and a later partial_fit on data where the
        # feature varies continues from the shared level, not from the floor).
        if self._fitted_likelihood() != "gaussian":
            return
        constant = self._constant_features(X, incremental)
        if not constant.any():
            return
        module = self.net_.module_
        with torch.no_grad():
            learned = module.noise_variance().double().cpu().numpy()
        module.set_noise_variance(shared_noise_for_constant_features(learned, constant), constant)

    def _build_criterion(self):
        return ELBOLoss(self.beta)

    def _update_criterion(self, criterion):
        criterion.beta = self.beta

    @property
    def noise_variance_(self):
        """The decoder's fitted per-feature variance (None for ``likelihood="bernoulli"``)."""
        check_is_fitted(self)
        if self._fitted_likelihood() != "gaussian":
            return None
        with torch.no_grad():
            return self.net_.module_.noise_variance().double().cpu().numpy()

    # -------------------------------------------------------------- inference
    def transform(self, X):
        """Encode X: the posterior mean E[z | x] (deterministic).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode; in [0, 1] for ``likelihood="bernoulli"``.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Same dtype as X (float32 or float64; other input is converted to float64).

        See Also
        --------
        inverse_transform : Decode latent points back to the data space.
        score_samples : The log-likelihood of each sample.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import VAETransformer
        >>> X = np.random.RandomState(0).rand(60, 5)
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      n_importance_samples=10, random_state=0, device="cpu").fit(X)
        >>> Z = vae.transform(X.astype(np.float32))
        >>> Z.shape, Z.dtype
        ((60, 2), dtype('float32'))
        >>> np.array_equal(Z, vae.transform(X.astype(np.float32)))  # no sampling
        True
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._map_batches(X, lambda m, x: m.encode(x)[0], self._n_components_fitted())

    def inverse_transform(self, X):
        """Decode latent points: the decoder mean (probabilities for ``likelihood="bernoulli"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points, e.g. from ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The decoder mean, of X's dtype (float32 or float64; other input is converted to
            float64); in [0, 1] for ``likelihood="bernoulli"``.

        See Also
        --------
        transform : Encode data to latent points.
        sample : Draw data from the decoder, noise included.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import VAETransformer
        >>> X = np.random.RandomState(0).rand(60, 5)
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      n_importance_samples=10, random_state=0, device="cpu").fit(X)
        >>> X_back = vae.inverse_transform(vae.transform(X))
        >>> X_back.shape
        (60, 5)
        """
        return self._decoder_mean(X)

    def _chunk(self, batch_rows):
        arch = self._fitted_architecture
        widest = max(arch["n_features"], arch["n_components"], *arch["hidden_layer_sizes"])
        return max(1, IWAE_CHUNK_ELEMENTS // (batch_rows * widest))

    def _importance_terms(self, X, reduce):
        """Run the K importance samples over X in chunks; ``reduce`` is "iwae" or "elbo"."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        self._check_params("n_importance_samples")
        k = self.n_importance_samples
        seed = _signed(self.net_.module_.score_seed % 2**64)

        def fn(module, x):
            keys = row_keys(x, seed)
            mean, log_variance = module.encode(x)  # (batch, d)
            std = torch.exp(0.5 * log_variance)
            chunk = self._chunk(x.shape[0])
            parts = []
            for start in range(0, k, chunk):
                eps = keyed_normal(keys, start, min(chunk, k - start), self._n_components_fitted(),
                                   x.dtype)  # (c, batch, d)
                z = mean + std * eps  # (c, batch, d)
                log_px = module.log_likelihood(x, module.decode(z))  # (c, batch)
                if reduce == "elbo":
                    parts.append(log_px.sum(0))
                else:
                    parts.append(torch.logsumexp(vae_log_weights(log_px, z, mean, log_variance), dim=0))
            if reduce == "elbo":  # E_q[log p(x | z)] over the K draws, the KL in closed form
                return elbo(sum(parts) / k, kl_diagonal_normal_standard_normal(mean, log_variance))
            return iwae_bound_from_chunks(parts, k)

        what = "importance-weighted log-likelihood" if reduce == "iwae" else "ELBO"
        return self._map_batches(X, fn, progress=f"{what}, K={k}")

    def score_samples(self, X):
        """Importance-weighted estimate of log p(x) per sample, in nats.

        log (1/K) sum_k p(x, z_k) / q(z_k | x) with z_k ~ q(z | x) and K =
        ``n_importance_samples`` (Burda et al., 2016), computed in chunks on the device and
        accumulated with log-sum-exp. The noise is fixed at fit, so repeated calls agree.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score; in [0, 1] for ``likelihood="bernoulli"``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Estimated log p(x) of each sample, in nats, of X's dtype (float32 or float64).

        See Also
        --------
        elbo : The looser evidence lower bound, from the same draws.
        score : The mean of ``score_samples``.
        LikelihoodOutlierDetector : Flags the samples with the lowest scores.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import VAETransformer
        >>> X = np.random.RandomState(0).rand(60, 5)
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      n_importance_samples=10, random_state=0, device="cpu").fit(X)
        >>> scores = vae.score_samples(X)
        >>> scores.shape
        (60,)
        >>> np.allclose(vae.score_samples(X[:3]), scores[:3])  # a row's score is its own
        True
        """
        return self._importance_terms(X, "iwae")

    def elbo(self, X):
        """Evidence lower bound per sample, in nats: E_q[log p(x | z)] - KL(q(z | x) || p(z)).

        The expectation is a Monte Carlo average over the same ``n_importance_samples`` draws
        as ``score_samples``; the KL is exact. This is the unweighted (beta = 1) bound, a lower
        bound on log p(x) that ``score_samples`` tightens.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score; in [0, 1] for ``likelihood="bernoulli"``.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            The ELBO of each sample, in nats, of X's dtype (float32 or float64).

        See Also
        --------
        score_samples : The importance-weighted estimate of log p(x).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import VAETransformer
        >>> X = np.random.RandomState(0).rand(60, 5)
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      n_importance_samples=10, random_state=0, device="cpu").fit(X)
        >>> bound = vae.elbo(X)
        >>> bound.shape
        (60,)
        >>> np.array_equal(bound, vae.elbo(X))  # the draws are fixed at fit
        True
        """
        return self._importance_terms(X, "elbo")

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the model: z ~ N(0, I), then x ~ p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            float64; 0/1 values for ``likelihood="bernoulli"``, the decoder mean plus Gaussian
            noise of variance ``noise_variance_`` for ``likelihood="gaussian"``.

        Raises
        ------
        ValueError
            When ``n_samples`` is not a positive integer.

        See Also
        --------
        inverse_transform : The decoder mean, without the noise.
        BernoulliRBMStack.sample : Samples of a deep belief network.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import VAETransformer
        >>> X = (np.random.RandomState(0).rand(60, 5) > 0.5).astype(np.float64)
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), likelihood="bernoulli",
        ...                      max_iter=3, random_state=0, device="cpu").fit(X)
        >>> S = vae.sample(4, random_state=0)
        >>> S.shape
        (4, 5)
        >>> set(np.unique(S)) <= {0.0, 1.0}
        True
        """
        check_is_fitted(self)
        self._check_n_samples(n_samples)
        rng = check_random_state(random_state)
        Z = rng.standard_normal((n_samples, self._n_components_fitted()))
        mean = self.inverse_transform(Z)
        if self._fitted_likelihood() == "bernoulli":
            return (rng.uniform(size=mean.shape) < mean).astype(np.float64)
        return mean + rng.standard_normal(mean.shape) * np.sqrt(self.noise_variance_)
