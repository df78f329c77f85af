"""SparseAutoencoder: an autoencoder with a KL sparsity penalty on sigmoid code units."""

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import BaseReconstructionAutoencoder
from ._docstrings import shared_docstring
from ._modules import Autoencoder, SparseReconstructionLoss


@shared_docstring
class SparseAutoencoder(BaseReconstructionAutoencoder):
    r"""Sparse autoencoder: sigmoid code units kept mostly silent by a KL sparsity penalty.

    The encoder maps x through ``hidden_layer_sizes`` (none by default: one code layer, the
    classic model) to ``n_components`` sigmoid code units; the decoder mirrors it back. The code
    may be overcomplete (``n_components > n_features``): the sparsity penalty, not a bottleneck,
    keeps it from copying the input. Training minimises, per minibatch,

    .. math::

        \frac{1}{n} \sum_i -\log p(x_i \mid \hat x_i)
        + \beta \sum_j \mathrm{KL}(\rho \,\|\, \hat\rho_j)
        + \frac{\alpha}{2} \|W\|^2,

    where :math:`\rho` is ``sparsity_target``, :math:`\hat\rho_j` code unit j's mean activation
    over the minibatch, :math:`\beta` is ``sparsity_weight`` and :math:`\alpha` is ``alpha``.
    The reconstruction term is half the squared error for ``likelihood="gaussian"`` and the
    cross-entropy for ``likelihood="bernoulli"``. ``transform`` returns the code activations, in
    (0, 1); ``inverse_transform`` decodes; ``score_samples`` gives the reconstruction
    log-likelihood in nats, as for :class:`AutoencoderTransformer`.

    Parameters
    ----------
    n_components : int, default=256
        Number of code units (the number of features ``transform`` returns). It may exceed the
        number of input features. The default is ``BernoulliRBM``'s.
    %(hidden_layer_sizes)s
    %(activation)s
    %(likelihood)s
    %(noise_model)s
    sparsity_target : float, default=0.05
        Target mean activation :math:`\rho` of each code unit, in (0, 1).
    sparsity_weight : float, default=3.0
        Weight :math:`\beta` of the KL sparsity penalty; 0 turns it off.
    %(training_parameters)s

    Attributes
    ----------
    %(fit_attributes)s
    loss_curve_ : list of float
        Mean training loss per epoch, sparsity penalty included (nats per sample, constants
        dropped for the Gaussian model).
    %(training_attributes)s
    mean_activation_ : ndarray of shape (n_components,)
        Each code unit's mean activation on the training data, with the final weights. After
        ``partial_fit`` it is the mean over all the data passed since the last ``fit`` (or the
        first ``partial_fit``), each batch encoded with the weights its call ended with.
    noise_variance_ : ndarray of shape (n_features_in_,) or None
        Per-feature variance of the Gaussian observation model (None for Bernoulli).
    %(net_)s
    %(module_)s

    See Also
    --------
    AutoencoderTransformer : The same autoencoder without the sparsity penalty, linear code.
    sklearn.neural_network.BernoulliRBM : Binary hidden units learned as a generative model.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse codes by L1-penalised coding.

    References
    ----------
    A. Ng, "Sparse autoencoder", CS294A lecture notes, Stanford University (2011).

    H. Lee, C. Ekanadham and A. Ng, "Sparse deep belief net model for visual area V2", NIPS 20
    (2008).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_ae import SparseAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> sae = SparseAutoencoder(n_components=100, max_iter=5, random_state=0, device="cpu")
    >>> Z = sae.fit_transform(X / 16)
    >>> Z.shape, bool(Z.min() > 0), bool(Z.max() < 1)
    ((1797, 100), True, True)
    >>> sae.mean_activation_.shape
    (100,)
    """

    _parameter_constraints = {
        **BaseReconstructionAutoencoder._parameter_constraints,
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=256, *, hidden_layer_sizes=(), activation="tanh",
                 likelihood="gaussian", noise_model="diagonal", sparsity_target=0.05,
                 sparsity_weight=3.0, alpha=1e-4,
                 batch_size="auto", learning_rate_init=1e-2, max_iter=1000, tol=1e-4,
                 n_iter_no_change=10, early_stopping=False, validation_fraction=0.1,
                 shuffle=True, random_state=None, verbose=0, warm_start=False, device="auto",
                 precision="float32", callbacks=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.noise_model = noise_model
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
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

    def _build_module(self, n_features, generator):
        return Autoencoder(n_features, self._hidden_sizes(), self.n_components, self.activation,
                           generator, code_activation="logistic")

    def _build_criterion(self):
        return SparseReconstructionLoss(self.likelihood, self.sparsity_target, self.sparsity_weight)

    def _update_criterion(self, criterion):
        criterion.sparsity_target, criterion.sparsity_weight = self.sparsity_target, self.sparsity_weight

    def _after_train(self, X, incremental):
        super()._after_train(X, incremental)
        # X is the validated training data on the device (float32), as the base hands it over
        self.mean_activation_ = self._running_mean(
            "activation", lambda m, x: m.encode(x), X, incremental)
