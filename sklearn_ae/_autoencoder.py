"""AutoencoderTransformer: a deterministic MLP autoencoder as a scikit-learn transformer."""

from sklearn.utils._param_validation import StrOptions

from ._base import BaseReconstructionAutoencoder
from ._modules import Autoencoder


class AutoencoderTransformer(BaseReconstructionAutoencoder):
    """Deterministic MLP autoencoder, trained in PyTorch, used as a scikit-learn transformer.

    The encoder maps x through ``hidden_layer_sizes`` to a linear code of ``n_components``
    units; the decoder mirrors it back. Training minimises the negative log-likelihood of the
    observation model: half the squared error for ``likelihood="gaussian"``, the cross-entropy for
    ``likelihood="bernoulli"``. ``transform`` returns the code, ``inverse_transform`` decodes,
    and ``score_samples`` gives the reconstruction log-likelihood in nats.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code (the number of features ``transform`` returns).
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Sizes of the encoder's intermediate layers; the decoder uses them in reverse.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Nonlinearity of the intermediate layers.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Observation model. ``"bernoulli"`` needs X in [0, 1] (use ``MinMaxScaler``).
    alpha : float, default=1e-4
        L2 penalty on the weights.
    batch_size : int or "auto", default="auto"
        Minibatch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate_init : float, default=1e-3
        Adam's learning rate.
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) that counts as progress.
    n_iter_no_change : int, default=10
        Stop after this many epochs without progress of at least ``tol``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop on the validation loss and restore
        the weights of the best epoch.
    validation_fraction : float, default=0.1
        Fraction of the data held out when ``early_stopping=True``.
    shuffle : bool, default=True
        Shuffle the training data every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split. The global random
        states of NumPy and torch are never touched.
    verbose : int, default=0
        1 prints one line per epoch; 2 adds a progress bar over the batches.
    warm_start : bool, default=False
        Continue from the previous fit's weights when ``fit`` is called again.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra callbacks for the skorch training loop.
    pretraining : None or "rbm", default=None
        ``"rbm"`` initialises the encoder layer by layer with a stack of Bernoulli RBMs and the
        decoder with the transposed weights before fine-tuning (Hinton & Salakhutdinov, 2006).
        Needs X in [0, 1].

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string column names.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch (nats per sample, constants dropped for the Gaussian model).
    validation_scores_ : list of float or None
        Negated validation loss per epoch, when ``early_stopping=True``.
    best_validation_score_ : float or None
        Best of ``validation_scores_``.
    noise_variance_ : ndarray of shape (n_features_in_,) or None
        Per-feature variance of the Gaussian observation model (None for Bernoulli).
    net_ : skorch.NeuralNet
        The skorch net that trained the model.
    module_ : torch.nn.Module
        The trained network.

    See Also
    --------
    sklearn.decomposition.PCA : The linear special case, with a closed-form fit.
    SparseAutoencoder : An autoencoder with a sparsity penalty on its code.
    VAETransformer : A probabilistic autoencoder with a true log-likelihood.

    References
    ----------
    G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of data with neural
    networks", Science 313 (2006).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_ae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=4, max_iter=5, random_state=0, device="cpu")
    >>> ae.fit_transform(X / 16).shape
    (1797, 4)
    >>> ae.score_samples(X[:3] / 16).shape
    (3,)
    """

    _parameter_constraints = {
        **BaseReconstructionAutoencoder._parameter_constraints,
        "pretraining": [None, StrOptions({"rbm"})],
    }

    def __init__(self, n_components=8, *, hidden_layer_sizes=(128, 64), activation="tanh",
                 likelihood="gaussian", alpha=1e-4, batch_size="auto", learning_rate_init=1e-3,
                 max_iter=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=0,
                 warm_start=False, device="auto", callbacks=None, pretraining=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
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
        self.callbacks = callbacks
        self.pretraining = pretraining

    def _build_module(self, n_features, generator):
        if self.pretraining == "rbm":
            raise NotImplementedError("pretraining='rbm' arrives with BernoulliRBMStack.")
        return Autoencoder(n_features, self._hidden_sizes(), self.n_components, self.activation,
                           generator)
