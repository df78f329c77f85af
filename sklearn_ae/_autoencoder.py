"""AutoencoderTransformer: a deterministic MLP autoencoder as a scikit-learn transformer."""

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, StrOptions

from ._base import BaseReconstructionAutoencoder
from ._docstrings import shared_docstring
from ._modules import Autoencoder


@shared_docstring
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
    %(hidden_layer_sizes)s
    %(activation)s
    %(likelihood)s
    %(noise_model)s
    %(training_parameters)s
    pretraining : None, "rbm" or BernoulliRBMStack, default=None
        ``"rbm"`` initialises the encoder layer by layer with a stack of Bernoulli RBMs (sizes
        ``hidden_layer_sizes`` then ``n_components``; CD-1, learning rate 0.1, momentum 0.5,
        weight decay 2e-4, batches of 100, 20 epochs per layer) and the decoder with the
        transposed weights, then fine-tunes the whole network by backpropagation (Hinton &
        Salakhutdinov, 2006). An unfitted ``BernoulliRBMStack`` sets the RBM training instead
        (its layer sizes are replaced). Needs X in [0, 1] and ``activation`` "logistic" or
        "tanh" (a tanh network gets the same function, rescaled). The code is the top RBM's
        hidden input (its logit); the decoder's first layer and, for ``likelihood="gaussian"``,
        its output start from the linearisation of the logistic function there.

    Attributes
    ----------
    %(fit_attributes)s
    loss_curve_ : list of float
        Mean training loss per epoch (nats per sample, constants dropped for the Gaussian model).
    %(training_attributes)s
    pretrained_ : BernoulliRBMStack or None
        The RBM stack that initialised the network (``pretraining`` set), else None.
    noise_variance_ : ndarray of shape (n_features_in_,) or None
        Per-feature variance of the Gaussian observation model (None for Bernoulli).
    %(net_)s
    %(module_)s

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

    _docstring_notes = {"alpha": (
        "The default is 0.1, not ``MLPRegressor``'s 1e-4: the noise is fitted on the training "
        "residuals, and a network regularised less fits its training rows so closely that "
        "held-out log-likelihoods fall far below PCA's on small or wide data "
        "(benchmarks/results/noise_weight_decay_study.md).")}

    _parameter_constraints = {
        **BaseReconstructionAutoencoder._parameter_constraints,
        "pretraining": [None, StrOptions({"rbm"}), HasMethods(["fit", "transform", "set_params"])],
    }

    def __init__(self, n_components=8, *, hidden_layer_sizes=(128, 64), activation="tanh",
                 likelihood="gaussian", noise_model="diagonal", alpha=0.1, batch_size="auto",
                 learning_rate_init=1e-3, max_iter=200, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, random_state=None, verbose=0,
                 warm_start=False, device="auto", precision="float32", callbacks=None, pretraining=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.noise_model = noise_model
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
        self.pretraining = pretraining

    #: how ``pretraining="rbm"`` trains its RBMs (Hinton & Salakhutdinov 2006, fewer epochs)
    _rbm_pretraining_params = dict(learning_rate=0.1, learning_rate_schedule="constant", momentum=0.5,
                                   alpha=2e-4, batch_size=100, max_iter=20, persistent=False,
                                   n_gibbs_steps=1)

    def _stages(self, data, ctx):
        """RBM pretraining (a nested fit of a ``BernoulliRBMStack``, in the same fit session, so
        that a Ctrl-C ends it and the fine-tuning), then the autoencoder's own training."""
        if ctx.fresh:
            self.pretrained_ = None if self.pretraining is None else self._pretrain(ctx.X)
        yield from super()._stages(data, ctx)

    def _pretrain(self, X):
        """Fit the RBM stack that initialises the network (on X in [0, 1])."""
        name = type(self).__name__
        if self.activation not in ("logistic", "tanh"):
            raise ValueError(
                f"{name}(pretraining=...) needs activation='logistic' or 'tanh' (RBM hidden units "
                f"are logistic); got activation={self.activation!r}.")
        data = X.data if sp.issparse(X) else X
        lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name}(pretraining=...) trains Bernoulli RBMs, which need X in [0, 1]; the data "
                f"range from {lo:.6g} to {hi:.6g}. Scale the features first, e.g. with "
                "sklearn.preprocessing.MinMaxScaler.")
        from ._rbm import BernoulliRBMStack  # the RBM module imports the shared base, not us

        if self.pretraining == "rbm":
            stack = BernoulliRBMStack(**self._rbm_pretraining_params)
        else:
            stack = clone(self.pretraining)
        params = dict(n_components=self.n_components, hidden_layer_sizes=self._hidden_sizes(),
                      warm_start=False)
        stack_params = stack.get_params()
        if stack_params.get("random_state") is None:
            rng = check_random_state(self.random_state)
            params["random_state"] = int(rng.randint(np.iinfo(np.int32).max))
        if self.pretraining == "rbm":  # the RBMs' CD step has no bf16 (no forward pass to autocast)
            params.update(device=self.device, verbose=self.verbose,
                          precision="tf32" if self.precision == "tf32" else "float32")
        return stack.set_params(**params).fit(X)

    def _build_module(self, n_features, generator):
        module = Autoencoder(n_features, self._hidden_sizes(), self.n_components, self.activation,
                             generator)
        stack = self.pretrained_
        if stack is not None:
            self._load_rbm_weights(module, stack)
        return module

    def _load_rbm_weights(self, module, stack):
        """Encoder from the RBMs' up-pass, decoder from their transposed weights.

        Each RBM layer computes an affine map ``pre = A s + a`` of probabilities ``s``. A
        layer's actual input ``u`` relates to ``s`` by ``s = alpha u + beta`` (logistic units:
        s = u; tanh units: s = (u + 1) / 2, since tanh(a / 2) = 2 sigmoid(a) - 1; the code, a
        logit z: s = sigmoid(z), linearised as 1/2 + z/4), and the layer's output is ``scale *
        pre + shift`` (tanh halves its argument; a Gaussian mean linearises the sigmoid).
        """
        tanh = self.activation == "tanh"
        hidden_in = (0.5, 0.5) if tanh else (1.0, 0.0)
        hidden_out = (0.5, 0.0) if tanh else (1.0, 0.0)
        n_layers = len(stack.coefs_)

        def load(linear, A, a, inp, out):
            A = torch.as_tensor(A, dtype=torch.float64)
            a = torch.as_tensor(a, dtype=torch.float64)
            (alpha, beta), (scale, shift) = inp, out
            with torch.no_grad():
                linear.weight.copy_(scale * alpha * A)
                linear.bias.copy_(scale * (a + beta * A.sum(1)) + shift)

        encoder = [m for m in module.encoder if isinstance(m, torch.nn.Linear)]
        decoder = [m for m in module.decoder if isinstance(m, torch.nn.Linear)]
        for i, (W, c) in enumerate(zip(stack.coefs_, stack.intercepts_hidden_)):
            inp = (1.0, 0.0) if i == 0 else hidden_in
            out = (1.0, 0.0) if i == n_layers - 1 else hidden_out  # the code is the top logit
            load(encoder[i], W.T, c, inp, out)
        for j in range(n_layers):
            i = n_layers - 1 - j  # decoder layer j undoes RBM i
            inp = (0.25, 0.5) if j == 0 else hidden_in
            if j < n_layers - 1:
                out = hidden_out
            else:
                out = (1.0, 0.0) if self.likelihood == "bernoulli" else (0.25, 0.5)
            load(decoder[j], stack.coefs_[i], stack.intercepts_visible_[i], inp, out)
