"""BernoulliRBMStack: a greedy layer-wise stack of Bernoulli RBMs (a deep belief network)."""

import copy
import time
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from . import _engine
from ._base import INFERENCE_BATCH_SIZE, BaseNeuralEstimator, check_unit_interval, column_moments
from ._docstrings import shared_docstring
from ._graphs import has_step_hooks
from ._likelihoods import (
    ANNEAL_BLOCK,
    bernoulli_log_prob_logits,
    importance_summary,
    log_mean_exp,
    rbm_log_likelihood_raise,
    rbm_log_partition_ais,
    rbm_free_energy,
    rbm_log_partition_exact,
)
from ._modules import RBM, FreeEnergyGap

#: values this far outside [0, 1] are taken for round-off and clipped; further out is an error
CLIP_TOLERANCE = 1e-5

#: largest smaller side of an RBM whose log Z ``log_partition="auto"`` computes exactly
MAX_EXACT_UNITS = 20

#: the most units ``log_partition="exact"`` will enumerate
MAX_ENUMERATED_UNITS = 30

#: AIS is reported as unconverged when its effective sample size falls below this fraction of runs
MIN_AIS_ESS_FRACTION = 0.1

#: log_partition="auto": two successive AIS estimates of log Z agree when their difference is at
#: most this many nats plus twice its standard error
AIS_TOLERANCE = 0.25

#: log_partition="auto" doubles the schedule up to this multiple of n_ais_betas, then warns
AIS_MAX_GROWTH = 16

#: AIS and RAISE run on one intra-op thread when a Gibbs step of all their chains costs fewer
#: multiply-adds than this (on 2 shared cores, two threads ran RAISE on the digits 4x slower)
SMALL_SCORING_FLOPS = 50_000_000

#: RAISE keeps at most this many floats of chain inputs at once (bounds the rows per chunk; larger
#: chunks were no faster on 2 cores)
RAISE_CHUNK_FLOATS = 1 << 22

#: RAISE warns when its log-weights spread by more than this many nats (median over samples;
#: log-normal weights with this spread have an effective sample size of a tenth of the runs)
RAISE_MAX_SPREAD = 1.5

#: the importance-weighted bound never holds more than this many floats per layer at once
BOUND_CHUNK_FLOATS = 1 << 22


def _seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


class MomentumSGD(torch.optim.Optimizer):
    """Stochastic gradient descent with momentum and weight decay: ``torch.optim.SGD``'s update
    (no dampening, no Nesterov), its state (``momentum_buffer``) and its parameter groups, as a
    torch optimizer that step hooks, schedulers and ``state_dict`` treat like any other.

    Why not ``torch.optim.SGD`` itself: its per-call dispatch costs more than the whole
    arithmetic of a CD step at ``BernoulliRBM``'s batch size of 10. For the same reason a step
    runs inside torch's profiler scope (``Optimizer.step#MomentumSGD.step``) only when a step
    hook is registered, here or globally; the hooks then run as torch runs them.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def _update(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if torch.is_grad_enabled():  # a context manager costs as much as an update of a small RBM
            with torch.no_grad():
                self._apply()
        else:
            self._apply()
        return loss

    def _apply(self):
        for group in self.param_groups:
            lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if weight_decay:
                    grad = grad.add(param, alpha=weight_decay)
                if momentum:
                    state = self.state[param]
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = grad.detach().clone()
                    else:
                        buffer.mul_(momentum).add_(grad)
                    grad = buffer
                param.add_(grad, alpha=-lr)

    _hooked_update = torch.optim.Optimizer.profile_hook_step(_update)

    def step(self, closure=None):
        if has_step_hooks(self):
            return self._hooked_update(closure)
        return self._update(closure)

    step.hooked = True  # torch's own flag: do not wrap this step in the profiler scope again


class _LinearDecay(Callback):
    """The learning rate of a fit decays linearly: epoch e (from 0) of ``max_iter`` runs at
    ``(1 - e / max_iter)`` times the rate set, which it has again when training ends."""

    def __init__(self, max_iter):
        self.max_iter = max_iter

    def on_train_begin(self, net, **kwargs):
        self.start = len(net.history)
        self.rates = [group["lr"] for group in net.optimizer_.param_groups]

    def on_epoch_begin(self, net, **kwargs):
        factor = 1.0 - (len(net.history) - 1 - self.start) / self.max_iter
        for group, rate in zip(net.optimizer_.param_groups, self.rates):
            group["lr"] = rate * factor

    def on_train_end(self, net, **kwargs):
        for group, rate in zip(net.optimizer_.param_groups, self.rates):
            group["lr"] = rate


class _RBMNet(_engine._Net):
    """The net of one RBM layer, with skorch's documented extension point for a custom step.

    Why overridden: CD's gradient has a closed form (``RBM.contrastive_divergence``), written
    straight into ``.grad``; autograd's engine costs more than the arithmetic of a small batch.
    The gradients are those ``backward`` gives through ``RBM.forward`` (tested), and a frozen
    parameter (``requires_grad=False``) gets none, as with ``backward``.
    """

    def train_step_single(self, batch, **fit_params):
        module = self.module_
        if fit_params or not isinstance(module, RBM):
            return super().train_step_single(batch, **fit_params)
        if not module.training:
            module.train()
        gap, grads = module.contrastive_divergence(batch[0])
        for param, grad in zip((module.weight, module.hidden_bias, module.visible_bias), grads):
            if param.requires_grad:
                param.grad = grad if param.grad is None else param.grad.add_(grad)
        return {"loss": gap.mean(), "y_pred": gap}


@shared_docstring
class BernoulliRBMStack(BaseNeuralEstimator):
    """Greedy layer-wise stack of Bernoulli RBMs (a deep belief network), trained in PyTorch.

    The layer sizes are ``hidden_layer_sizes`` followed by ``n_components``; with the default
    ``hidden_layer_sizes=()`` this is a single RBM, a drop-in for scikit-learn's
    :class:`~sklearn.neural_network.BernoulliRBM` (``components_``, ``intercept_hidden_``,
    ``intercept_visible_``, ``gibbs``, ``score_samples`` a true log-likelihood and
    ``pseudo_likelihood`` scikit-learn's measure). Each layer is trained on the previous layer's
    hidden probabilities by CD-k or persistent CD, by stochastic gradient descent on the
    free-energy gap F(v_data) - F(v_model), through the same training engine as the package's
    other estimators.

    The defaults leave ``BernoulliRBM``'s where a study across binary data sets
    (``benchmarks/study_rbm_defaults.py``: binarized MNIST, thresholded digits, binarized ODDS
    sets, synthetic data) found a usable density at theirs wanting: CD-1 rather than persistent
    CD, 20 epochs rather than 10, a learning rate that decays linearly over the epochs, and
    visible biases that start at the log-odds of the data's means. On sets it was not tuned on
    (MNIST, musk, arrhythmia, samples of a random RBM) these defaults score 7 to 65 nats per
    image above independent pixels, where ``BernoulliRBM``'s defaults scored below them on
    several. ``persistent=True``, ``learning_rate_schedule="constant"`` and ``max_iter=10`` give
    ``BernoulliRBM``'s update (from data-based visible biases).

    ``transform`` is the up-pass (top-layer hidden probabilities), ``inverse_transform`` the
    down-pass (visible probabilities), and ``score_samples`` a log-likelihood in nats: for one
    RBM, log p(v) = -F(v) - log Z with log Z exact (enumeration) or estimated by annealed
    importance sampling; for a stack, an importance-weighted lower bound on the DBN's log p(v).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units of the top RBM (the number of features ``transform`` returns).
    hidden_layer_sizes : tuple of int, default=()
        Hidden sizes of the RBMs below the top one; ``()`` is a single RBM.
    learning_rate : float, default=0.1
        SGD learning rate (per sample: the batch gradient is a mean), as in ``BernoulliRBM``.
    learning_rate_schedule : {"linear", "constant"}, default="linear"
        "linear": epoch e (from 0) of a ``fit`` runs at ``learning_rate * (1 - e / max_iter)``
        (each layer of a stack over its own epochs); "constant" keeps ``learning_rate``.
        ``partial_fit``, which has no horizon, always uses ``learning_rate``. Every call sets the
        rate it starts from. With a scheduler of one's own (skorch's ``LRScheduler`` callback) use
        "constant": under "linear" both change the rate every epoch and the result depends on the
        order in which they run.
    momentum : float, default=0.0
        SGD momentum.
    alpha : float, default=0.0
        Weight decay (L2 penalty) on the weights; biases are not decayed.
    %(batch_size)s
    max_iter : int, default=20
        Number of epochs per layer (``n_iter`` of ``BernoulliRBM``, whose default is 10).
    tol : float, default=0.0
        With ``tol > 0``, a layer stops early when its CD loss (the free-energy gap) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs. CD follows no objective whose
        convergence can be detected reliably, so the default runs every epoch.
    n_iter_no_change : int, default=10
        See ``tol``.
    %(shuffle)s
    n_gibbs_steps : int, default=1
        Number of Gibbs sweeps k of CD-k / PCD-k.
    persistent : bool, default=False
        Persistent CD (the chains carry over between batches, as in ``BernoulliRBM``) rather
        than CD-k started at the data. With as many persistent chains as rows in a batch (10 by
        default), PCD's models were often ones that annealed importance sampling could not
        score reliably in the defaults study.
    log_partition : {"auto", "exact", "ais"}, default="auto"
        How log Z of the top RBM is computed. "exact" enumerates the states of its smaller side
        (at most about 25 units is practical). "ais" uses annealed importance sampling with
        ``n_ais_betas`` intermediate distributions. "auto" enumerates when the smaller side has
        at most 20 units; otherwise it runs AIS with ``n_ais_betas // 2`` and ``n_ais_betas``
        betas, then 2, 4, ... 16 times ``n_ais_betas`` until two successive estimates agree
        (their difference within 0.25 nats plus twice its standard error, and neither resting
        on fewer than a tenth of the runs), and warns with the figures if none do.
        ``log_partition_info_`` records every schedule tried.
    n_ais_runs : int, default=100
        Number of AIS chains (run together, vectorised, on the device). The standard error of
        log Z shrinks as one over its square root; the cost grows in proportion.
    n_ais_betas : int, default=1000
        Number of intermediate distributions of AIS (spaced as in Salakhutdinov & Murray,
        2008): the schedule with ``log_partition="ais"``, the one checked (against half of it,
        then grown) with ``"auto"``. Salakhutdinov & Murray used 14,500 for a 784-500 RBM;
        "auto" grows a short default schedule only where it does not suffice. The cost grows
        in proportion; a short schedule underestimates log Z (and so overstates every
        likelihood), which "auto" detects. See :ref:`rbm_scoring_cost`.
    n_importance_samples : int, default=100
        Importance samples per data point in the lower bound of a stack's ``score_samples``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the Gibbs chains, AIS and the importance samples. The
        global random states of NumPy and torch are never touched.
    %(verbose)s
    %(warm_start)s
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    precision : {"float32", "tf32"}, default="float32"
        Arithmetic of training: ``"tf32"`` computes the matrix products in TensorFloat-32 on
        CUDA (float32 on the CPU). The contrastive-divergence step computes closed-form gradients,
        with no forward pass for a bfloat16 autocast to apply to, so ``"bf16"`` is not offered.
        Scoring always computes in float32 (float64 for float64 input).
    %(callbacks)s
        Every layer's net uses them in turn (callbacks that write files write them once per
        layer, over each other, unless their file names say which layer).

    Attributes
    ----------
    %(n_features_in_)s
    %(feature_names_in_)s
    coefs_ : list of ndarray
        Weights of each RBM, bottom first, of shape (n_visible, n_hidden).
    intercepts_hidden_ : list of ndarray
        Hidden biases of each RBM.
    intercepts_visible_ : list of ndarray
        Visible biases of each RBM.
    components_ : ndarray of shape (n_components, n_features_in_)
        A single RBM's weights, as ``BernoulliRBM`` has them (a stack has none).
    intercept_hidden_ : ndarray of shape (n_components,)
        A single RBM's hidden biases, as ``BernoulliRBM`` has them.
    intercept_visible_ : ndarray of shape (n_features_in_,)
        A single RBM's visible biases, as ``BernoulliRBM`` has them.
    log_partition_ : float
        log Z of the top RBM; computed on first use (``score_samples``) and cached.
    log_partition_stderr_ : float
        Standard error of ``log_partition_`` (0.0 when exact).
    log_partition_info_ : dict
        How ``log_partition_`` was computed: ``method`` ("exact" or "ais"), and for AIS
        ``n_runs``, ``n_betas``, ``stderr``, ``log_weight_std``, ``effective_sample_size`` and
        ``seconds`` of the estimate used, ``schedules`` (the same figures for every schedule
        tried, smallest first), ``agreed`` (whether the last two agreed; None for
        ``log_partition="ais"``) and, when two or more were tried, ``difference``,
        ``difference_stderr`` and ``tolerance`` of the last two.
    n_iter_ : int
        Number of epochs run by the top layer.
    loss_curve_ : list of float
        Mean CD loss (free-energy gap, nats) per epoch of the top layer.
    %(loss_)s
    %(best_loss_)s
    loss_curves_ : list of list of float
        ``loss_curve_`` of every layer, bottom first.
    nets_ : list of skorch.NeuralNet
        The nets that trained each layer, bottom first; ``net_`` is the top one.

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : scikit-learn's single RBM, in NumPy.
    AutoencoderTransformer : Can be initialised from this stack (``pretraining="rbm"``).

    References
    ----------
    G. E. Hinton, S. Osindero and Y.-W. Teh, "A fast learning algorithm for deep belief nets",
    Neural Computation 18 (2006).

    T. Tieleman, "Training restricted Boltzmann machines using approximations to the likelihood
    gradient", ICML 2008.

    R. Salakhutdinov and I. Murray, "On the quantitative analysis of deep belief networks",
    ICML 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ae import BernoulliRBMStack
    >>> X = (np.random.RandomState(0).rand(200, 12) > 0.5).astype(np.float32)
    >>> rbm = BernoulliRBMStack(n_components=4, max_iter=2, random_state=0, device="cpu")
    >>> rbm.fit_transform(X).shape
    (200, 4)
    >>> rbm.score_samples(X[:3]).shape
    (3,)
    >>> rbm.sample(5, random_state=0).shape
    (5, 12)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "n_gibbs_steps": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_schedule": [StrOptions({"linear", "constant"})],
        "persistent": ["boolean"],
        "log_partition": [StrOptions({"auto", "exact", "ais"})],
        "n_ais_runs": [Interval(Integral, 2, None, closed="left")],
        "n_ais_betas": [Interval(Integral, 3, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str],
        "precision": [StrOptions({"float32", "tf32"})],  # no forward pass for bf16 autocast
        "callbacks": [list, None],
    }

    _accept_sparse = True

    def __init__(self, n_components=256, *, hidden_layer_sizes=(), learning_rate=0.1,
                 learning_rate_schedule="linear", momentum=0.0, alpha=0.0, batch_size=10,
                 max_iter=20, tol=0.0, n_iter_no_change=10, shuffle=True, n_gibbs_steps=1,
                 persistent=False,
                 log_partition="auto", n_ais_runs=100, n_ais_betas=1000,
                 n_importance_samples=100, random_state=None, verbose=0, warm_start=False,
                 device="auto", precision="float32", callbacks=None):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.shuffle = shuffle
        self.n_gibbs_steps = n_gibbs_steps
        self.persistent = persistent
        self.log_partition = log_partition
        self.n_ais_runs = n_ais_runs
        self.n_ais_betas = n_ais_betas
        self.n_importance_samples = n_importance_samples
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    # ------------------------------------------------------------------ hooks
    def _build_criterion(self):
        return FreeEnergyGap()

    def _optimizer(self):
        """Plain SGD (``BernoulliRBM``'s update) with momentum; weight decay on weights only."""
        return MomentumSGD, {
            "lr": self.learning_rate,
            "momentum": self.momentum,
            "weight_decay": self.alpha,
            "param_groups": [("*bias", {"weight_decay": 0.0})],
        }

    def _validate(self, X, reset):
        X = super()._validate(X, reset)
        data = X.data if sp.issparse(X) else X
        if data.size and (data.min() < 0.0 or data.max() > 1.0):  # round-off: clip a copy
            X = X.copy()
            target = X.data if sp.issparse(X) else X
            np.clip(target, 0.0, 1.0, out=target)
        return X

    def _check_values(self, X):
        check_unit_interval(X, type(self).__name__, clip_tol=CLIP_TOLERANCE)

    def _layer_sizes(self, n_features):
        return (n_features, *self._hidden_sizes(), self.n_components)

    # --------------------------------------------------------------- training
    _accepts_accelerate = False

    def _architecture(self, n_features):
        return {"n_features": n_features, "n_components": self.n_components,
                "hidden_layer_sizes": self._hidden_sizes()}

    def _draw_seeds(self, rng):
        super()._draw_seeds(rng)
        self._scoring_seeds = {"ais": _seed(rng), "bound": _seed(rng)}
        self._layer_seeds = [_seed(rng) for _ in self._hidden_sizes() + (self.n_components,)]
        self._gibbs_seed = _seed(rng)

    def _n_stages(self, n_features):
        return len(self._layer_sizes(n_features)) - 1

    def _epochs_trained(self):
        epochs = [len(curve) for curve in self.loss_curves_]
        return epochs if len(epochs) > 1 else epochs[0]

    def _stops_early(self, incremental):
        return not incremental and self.tol > 0  # tol=0: every epoch runs, as in BernoulliRBM

    def _uses_validation(self, incremental):
        if _engine.needs_validation(self.callbacks):
            raise ValueError(
                f"{type(self).__name__} records no validation loss (it has no early_stopping); "
                "give the callback monitor='train_loss' (e.g. EarlyStopping(monitor='train_loss', "
                "threshold_mode='abs'): its training loss, a free-energy gap, can be negative, which a "
                "relative threshold misreads).")
        return False

    def _guard_settings(self, module):
        # the CD loss (a free-energy gap) starts near 0; beyond ten nats per visible unit the
        # model no longer describes any data: a learning rate (or weight decay) far too large
        n_visible, n_hidden = module.weight.shape
        label = f"layer {n_visible}->{n_hidden}" if self._hidden_sizes() else None
        return {"loss_limit": 10.0 * n_visible, "label": label}

    def _callbacks(self, ctx, module):
        callbacks = super()._callbacks(ctx, module)
        if not ctx.incremental and self.learning_rate_schedule == "linear":
            callbacks.insert(0, (_engine.reserved_name("learning_rate_schedule"), _LinearDecay(self.max_iter)))
        return callbacks

    def _new_module(self, n_in, n_out, init, seed):
        module = RBM(n_in, n_out, init, seed=seed, n_gibbs_steps=self.n_gibbs_steps, persistent=self.persistent)
        module.scoring_seeds = dict(self._scoring_seeds)
        return module

    def _stages(self, data, ctx):
        """One net per layer, each trained on the hidden probabilities of the (trained) layer
        below; sparse input is densified a batch at a time. Every layer's net exists before the
        first is trained, so a Ctrl-C between layers leaves a whole stack (the upper layers
        as initialised). A layer's training input also gives it its base rates (the visible
        biases of a fresh layer start at their log-odds, the starting model of AIS)."""
        sizes = self._layer_sizes(data.shape[1])
        if ctx.fresh:
            init = torch.Generator().manual_seed(self._init_seed)
            nets = [self._new_net(self._allocate(self._new_module, n_in, n_out, init, seed), ctx,
                                  net_class=_RBMNet)
                    for n_in, n_out, seed in zip(sizes[:-1], sizes[1:], self._layer_seeds)]
        else:
            nets = [self._continue_net(net, ctx) for net in self.nets_]
            for net in nets:
                net.module_.n_gibbs_steps = self.n_gibbs_steps
                net.module_.persistent = self.persistent
        self.nets_, self.net_ = nets, nets[-1]
        for i, net in enumerate(nets):
            module = net.module_
            input_sum = torch.as_tensor(column_moments(data, variance=False)[0] * data.shape[0],
                                        device=module.input_sum.device)
            with torch.no_grad():
                if ctx.fresh:
                    module.input_sum.copy_(input_sum)
                    module.input_count.fill_(data.shape[0])
                    module.visible_bias.copy_(module.base_rate_logits())
                else:
                    module.input_sum.add_(input_sum)
                    module.input_count.add_(data.shape[0])
            yield net, _engine.DeviceDataset(data, ctx.generator, device=ctx.device), None
            if i < len(nets) - 1:
                data = self._up(module, data, ctx.device)

    def _finish(self, data, ctx):
        self._log_partition_cache = {}
        self._record_history(self.net_)
        self.loss_curves_ = [[float(v) for v in net.history[:, "train_loss"]] if len(net.history) else []
                             for net in self.nets_]
        if ctx.fresh:
            self._gibbs_generator = np.random.RandomState(self._gibbs_seed)

    # the weights as scikit-learn's names have them, read from the nets (so that they follow a
    # net_.load_params)
    @property
    def coefs_(self):
        """Weights of each RBM, bottom first, of shape (n_visible, n_hidden)."""
        check_is_fitted(self)
        return [net.module_.weight.detach().cpu().numpy().copy() for net in self.nets_]

    @property
    def intercepts_hidden_(self):
        """Hidden biases of each RBM, bottom first."""
        check_is_fitted(self)
        return [net.module_.hidden_bias.detach().cpu().numpy().copy() for net in self.nets_]

    @property
    def intercepts_visible_(self):
        """Visible biases of each RBM, bottom first."""
        check_is_fitted(self)
        return [net.module_.visible_bias.detach().cpu().numpy().copy() for net in self.nets_]

    def _single_layer(self):
        """Whether this is one RBM (fitted as one, or set to be one before fitting)."""
        return len(self.nets_) == 1 if self.__sklearn_is_fitted__() else not self._hidden_sizes()

    def _one_rbm(self, name):
        check_is_fitted(self)
        if not self._single_layer():
            raise AttributeError(f"{name} is BernoulliRBM's attribute of a single RBM; a stack has "
                                 "coefs_, intercepts_hidden_ and intercepts_visible_ per layer.")

    @property
    def components_(self):
        """``BernoulliRBM.components_`` of a single RBM: its weights, (n_components, n_features)."""
        self._one_rbm("components_")
        return self.coefs_[0].T

    @property
    def intercept_hidden_(self):
        """``BernoulliRBM.intercept_hidden_`` of a single RBM."""
        self._one_rbm("intercept_hidden_")
        return self.intercepts_hidden_[0]

    @property
    def intercept_visible_(self):
        """``BernoulliRBM.intercept_visible_`` of a single RBM."""
        self._one_rbm("intercept_visible_")
        return self.intercepts_visible_[0]

    @available_if(lambda self: self._single_layer())
    def gibbs(self, v):
        """One Gibbs sampling step, as ``BernoulliRBM.gibbs``: hidden states drawn given ``v``,
        then visible states drawn given them (a single RBM only).

        The draws come from a generator seeded at fit (``random_state``), which each call
        advances, so repeated calls continue one chain of draws.

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer to start from, in [0, 1].

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step (booleans, as ``BernoulliRBM``).

        See Also
        --------
        sample : Samples of the model from long Gibbs chains.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(40, 6) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, max_iter=2, random_state=0, device="cpu").fit(X)
        >>> rbm.gibbs(X[:2]).shape
        (2, 6)
        """
        check_is_fitted(self)
        v = self._validate(v, reset=False)
        module = self._inference_module(np.float64)[0]
        rng = self._gibbs_generator

        def step(module, x):
            h_probs = module.hidden_probs(x)
            h = torch.as_tensor(rng.uniform(size=tuple(h_probs.shape)) < h_probs.cpu().numpy(),
                                dtype=x.dtype, device=x.device)
            v_probs = module.visible_probs(h)
            return torch.as_tensor(rng.uniform(size=tuple(v_probs.shape)) < v_probs.cpu().numpy(),
                                   dtype=x.dtype, device=x.device)

        del module
        return self._map_batches(v.astype(np.float64), lambda layers, x: step(layers[0], x),
                                 self.n_features_in_).astype(bool)

    @staticmethod
    def _up(module, data, device):
        """Hidden probabilities of ``module`` for all rows of ``data`` (a tensor, or a sparse
        matrix densified a batch at a time), on ``device``."""
        out = torch.empty(data.shape[0], module.weight.shape[1], device=device)
        with torch.no_grad():
            for rows in gen_batches(data.shape[0], INFERENCE_BATCH_SIZE):
                part = data[rows]
                if sp.issparse(part):
                    part = torch.from_numpy(np.asarray(part.toarray(), dtype=np.float32)).to(device)
                out[rows] = module.hidden_probs(part)
        return out

    # -------------------------------------------------------------- inference
    def _inference_module(self, dtype):
        """All layers, bottom first, in eval mode and in ``dtype`` (copies unless float32)."""
        layers = torch.nn.ModuleList([net.module_ for net in self.nets_])
        if dtype == np.float64:
            layers = copy.deepcopy(layers).to(torch.float64)
        return layers.eval()

    def transform(self, X):
        """Up-pass: the top RBM's hidden probabilities, each layer fed the probabilities below.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        H : ndarray of shape (n_samples, n_components)
            Hidden probabilities in [0, 1], of X's dtype (float32 or float64; other input is
            converted to float64).

        See Also
        --------
        inverse_transform : The down-pass, from the top layer back to the data.
        sample : Draw new data from the model.
        sklearn.neural_network.BernoulliRBM.transform : The same up-pass for one RBM.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), max_iter=2,
        ...                         random_state=0, device="cpu").fit(X)
        >>> H = rbm.transform(X)
        >>> H.shape, H.dtype
        ((50, 3), dtype('float32'))
        >>> bool(((H >= 0) & (H <= 1)).all())
        True
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)

        def up(layers, x):
            for layer in layers:
                x = layer.hidden_probs(x)
            return x

        return self._map_batches(X, up, self._n_components_fitted())

    def inverse_transform(self, X):
        """Down-pass: visible probabilities, each layer fed the probabilities above.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Top-layer hidden states or probabilities, e.g. from ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Visible probabilities in [0, 1] (the mean, not a sample), of X's dtype (float32 or
            float64; other input is converted to float64).

        See Also
        --------
        transform : The up-pass, from the data to the top layer.
        sample : Binary samples rather than probabilities.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, max_iter=2, random_state=0,
        ...                         device="cpu").fit(X)
        >>> X_back = rbm.inverse_transform(rbm.transform(X))
        >>> X_back.shape
        (50, 8)
        >>> bool(((X_back >= 0) & (X_back <= 1)).all())
        True
        """
        H = self._check_codes(X)

        def down(layers, h):
            for layer in reversed(layers):
                h = layer.visible_probs(h)
            return h

        return self._map_batches(H, down, self.n_features_in_)

    # ------------------------------------------------------------ likelihoods
    def _scoring_threads(self, n_chains):
        """One intra-op thread when a Gibbs step of ``n_chains`` chains is small (on the CPU)."""
        if self._device_().type != "cpu":
            return None
        n_visible, n_hidden = self.net_.module_.weight.shape
        return 1 if n_chains * n_visible * n_hidden < SMALL_SCORING_FLOPS else None

    def _base_rate_logits(self, device):
        """Logits of the base-rate model of AIS and RAISE: the top RBM's training-input means."""
        return self.net_.module_.base_rate_logits().to(device)

    def _weights_key(self):
        """Part of every cached log Z's key: a net_.load_params (or a warm start) invalidates it."""
        top = self.net_.module_
        return tuple(float(t.detach().double().sum())
                     for t in (top.weight, top.hidden_bias, top.visible_bias, top.input_sum, top.input_count))

    # the seeds of scoring live in the top RBM's state (they travel with net_.save_params)
    @property
    def _ais_seed(self):
        return self.net_.module_.scoring_seeds["ais"]

    @property
    def _bound_seed(self):
        return self.net_.module_.scoring_seeds["bound"]

    @_bound_seed.setter
    def _bound_seed(self, seed):
        self.net_.module_.scoring_seeds["bound"] = int(seed)

    def _ais_schedule(self, n_runs, n_betas):
        """One AIS estimate of the top RBM's log Z (cached): its figures as a dict."""
        key = ("schedule", n_runs, n_betas) + self._weights_key()
        cache = self._log_partition_cache
        if key in cache:
            return cache[key]
        top = self.net_.module_
        device = self._device_()
        seed = int(np.random.SeedSequence([self._ais_seed, n_betas]).generate_state(1)[0])
        generator = torch.Generator(device=device).manual_seed(seed)
        start = time.perf_counter()
        with torch.no_grad(), _engine.torch_threads(self._scoring_threads(n_runs)), \
                self._progress(n_betas, f"AIS log Z, {n_betas} betas") as bar:
            log_z, log_w = rbm_log_partition_ais(
                top.weight, top.hidden_bias, top.visible_bias, self._base_rate_logits(device),
                n_runs=n_runs, n_betas=n_betas, generator=generator, progress=bar.update)
            _, stderr, ess, spread = importance_summary(log_w)
        cache[key] = {"n_betas": n_betas, "log_partition": log_z, "stderr": float(stderr),
                      "log_weight_std": float(spread), "effective_sample_size": float(ess),
                      "seconds": time.perf_counter() - start}
        return cache[key]

    def _log_partition(self):
        """log Z of the top RBM and how it was obtained, computed once per setting and cached."""
        check_is_fitted(self)
        self._check_params("log_partition", "n_ais_runs", "n_ais_betas")
        top = self.net_.module_
        smaller = min(top.weight.shape)
        method = self.log_partition
        if method == "auto" and smaller <= MAX_EXACT_UNITS:
            method = "exact"
        key = ((method,) if method == "exact" else (method, self.n_ais_runs, self.n_ais_betas)) + self._weights_key()
        cache = self._log_partition_cache
        if key in cache:
            return cache[key]
        if method == "exact":
            if smaller > MAX_ENUMERATED_UNITS:
                raise ValueError(
                    f"log_partition='exact' enumerates 2**{smaller} states of the top RBM's "
                    f"smaller side; at most 2**{MAX_ENUMERATED_UNITS} is supported. Use "
                    "log_partition='ais' (or 'auto').")
            with torch.no_grad():
                log_z = rbm_log_partition_exact(top.weight.detach(), top.hidden_bias.detach(),
                                                top.visible_bias.detach())
            cache[key] = {"method": "exact", "log_partition": log_z, "stderr": 0.0}
            return cache[key]
        n_runs, n_betas = self.n_ais_runs, self.n_ais_betas
        if method == "ais":
            schedules = [self._ais_schedule(n_runs, n_betas)]
            info = self._ais_info(schedules, agreed=None)
            if info["effective_sample_size"] < MIN_AIS_ESS_FRACTION * n_runs:
                _engine.warn(
                    f"AIS has not converged: the effective sample size is "
                    f"{info['effective_sample_size']:.1f} of {n_runs} runs (log-weight spread "
                    f"{info['log_weight_std']:.2f} nats), so log Z = {info['log_partition']:.2f} is "
                    "probably underestimated and every likelihood overstated. Increase "
                    "n_ais_betas.", UserWarning)
        else:  # "auto": grow the schedule until two in a row agree
            sizes = [max(3, n_betas // 2), n_betas]
            while sizes[-1] * 2 <= AIS_MAX_GROWTH * n_betas:
                sizes.append(sizes[-1] * 2)
            schedules = [self._ais_schedule(n_runs, sizes[0])]
            agreed = False
            for size in sizes[1:]:
                schedules.append(self._ais_schedule(n_runs, size))
                if self._schedules_agree(*schedules[-2:], n_runs):
                    agreed = True
                    break
            info = self._ais_info(schedules, agreed)
            if not agreed:
                (a, b), ess_min = schedules[-2:], MIN_AIS_ESS_FRACTION * n_runs
                _engine.warn(
                    f"AIS has not converged within its budget ({AIS_MAX_GROWTH} x n_ais_betas): "
                    f"log Z = {a['log_partition']:.2f} +/- {a['stderr']:.2f} with {a['n_betas']} "
                    f"betas and {b['log_partition']:.2f} +/- {b['stderr']:.2f} with {b['n_betas']} "
                    f"differ by {info['difference']:.2f} nats (tolerance {AIS_TOLERANCE} nats plus "
                    f"twice the standard error of the difference; effective sample sizes "
                    f"{a['effective_sample_size']:.0f} and {b['effective_sample_size']:.0f} of "
                    f"{n_runs} runs, at least {ess_min:.0f} needed). log Z is probably "
                    "underestimated and every likelihood overstated. Increase n_ais_betas.",
                    UserWarning)
        cache[key] = info
        return info

    @staticmethod
    def _schedules_agree(a, b, n_runs):
        """Two AIS estimates agree when neither rests on a few runs and their difference is
        within ``AIS_TOLERANCE`` plus twice its standard error: a longer schedule shrinks the
        annealing's bias, which shows as a difference beyond the runs' noise; the noise itself
        only more runs shrink, and it is reported as the estimate's standard error."""
        difference = abs(b["log_partition"] - a["log_partition"])
        stderr = float(np.hypot(a["stderr"], b["stderr"]))
        enough = min(a["effective_sample_size"], b["effective_sample_size"]) >= MIN_AIS_ESS_FRACTION * n_runs
        return enough and difference <= AIS_TOLERANCE + 2.0 * stderr

    def _ais_info(self, schedules, agreed):
        """``log_partition_info_`` of an AIS estimate: the last schedule's figures, every
        schedule tried, and for ``log_partition="auto"`` how the last two compare."""
        last = schedules[-1]
        info = {"method": "ais", "log_partition": last["log_partition"], "stderr": last["stderr"],
                "n_runs": self.n_ais_runs, "n_betas": last["n_betas"],
                "log_weight_std": last["log_weight_std"],
                "effective_sample_size": last["effective_sample_size"],
                "schedules": [dict(s) for s in schedules], "agreed": agreed,
                "seconds": sum(s["seconds"] for s in schedules)}
        if len(schedules) > 1:
            a, b = schedules[-2:]
            info.update(difference=abs(b["log_partition"] - a["log_partition"]),
                        difference_stderr=float(np.hypot(a["stderr"], b["stderr"])),
                        tolerance=AIS_TOLERANCE)
        return info

    @property
    def log_partition_(self):
        """log Z of the top RBM (exact or AIS, per ``log_partition``); cached after first use."""
        return self._log_partition()["log_partition"]

    @property
    def log_partition_stderr_(self):
        """Standard error of ``log_partition_`` (0.0 when exact)."""
        return self._log_partition()["stderr"]

    @property
    def log_partition_info_(self):
        """How ``log_partition_`` was computed, with the AIS diagnostics (a copy)."""
        return copy.deepcopy(self._log_partition())

    def score_samples(self, X):
        """Log-likelihood of each sample, in nats.

        One RBM: log p(v) = -F(v) - log Z, exact when log Z is (see ``log_partition``). A stack:
        the importance-weighted lower bound log (1/K) sum_k p(v, h_k) / q(h_k | v) of
        Salakhutdinov & Murray (2008), with the up-pass q as proposal, the lower RBMs' directed
        down-pass and the top RBM's normalised marginal over its visible layer, and
        K = ``n_importance_samples``. The importance samples are seeded at fit time and shared by
        all rows (common random numbers), so that each row's value does not depend on the
        other rows and repeated calls agree.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Log-likelihood (one RBM) or its lower bound (a stack) of each sample, in nats, of
            X's dtype (float32 or float64). The first call computes ``log_partition_``, which
            is then cached.

        Warns
        -----
        UserWarning
            When log Z is estimated by AIS and has not converged (see ``log_partition``): raise
            ``n_ais_betas``.

        See Also
        --------
        score : The mean of ``score_samples``.
        log_likelihood_bounds : RAISE's lower and AIS's upper bound on log p(v), one RBM.
        pseudo_likelihood : scikit-learn's proxy for the log-likelihood.
        LikelihoodOutlierDetector : Flags the samples with the lowest scores.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, max_iter=2, log_partition="exact",
        ...                         random_state=0, device="cpu").fit(X)
        >>> scores = rbm.score_samples(X)
        >>> scores.shape
        (50,)
        >>> bool((scores < 0).all())  # the log of a probability of binary data
        True
        >>> stack = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), max_iter=2,
        ...                           n_importance_samples=10, log_partition="exact",
        ...                           random_state=0, device="cpu").fit(X)
        >>> stack.score_samples(X[:4]).shape
        (4,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        log_z = self.log_partition_
        if len(self.nets_) == 1:
            return self._map_batches(X, lambda layers, x: -layers[-1].free_energy(x) - log_z)

        self._check_params("n_importance_samples")
        device = self._device_()
        n_samples = self.n_importance_samples
        # drawn on the CPU, then moved: the same draws, so the same scores, on every device
        generator = torch.Generator().manual_seed(self._bound_seed)
        uniforms = [torch.rand(n_samples, coef.shape[1], generator=generator,
                               dtype=torch.float64).to(device) for coef in self.coefs_[:-1]]

        def bound(layers, x):
            uni = [u.to(x.dtype) for u in uniforms]
            width = max(layer.weight.shape[1] for layer in layers)
            chunk = max(1, BOUND_CHUNK_FLOATS // (n_samples * max(width, x.shape[1])))
            out = []
            for rows in gen_batches(x.shape[0], chunk):
                state = x[rows].unsqueeze(0)  # (1, rows, n_features), then (K, rows, n_hidden)
                log_ratio = x.new_zeros(n_samples, state.shape[1])
                for layer, u in zip(layers[:-1], uni):
                    logits = state @ layer.weight + layer.hidden_bias
                    h = (u[:, None, :] < torch.sigmoid(logits)).to(x.dtype)  # h ~ q(h | state)
                    log_ratio -= bernoulli_log_prob_logits(h, logits.expand_as(h))
                    down = h @ layer.weight.T + layer.visible_bias
                    log_ratio += bernoulli_log_prob_logits(state.expand_as(down), down)  # log p(state | h)
                    state = h
                log_ratio += -layers[-1].free_energy(state) - log_z  # top RBM's marginal
                out.append(log_mean_exp(log_ratio, dim=0))
            return torch.cat(out)

        return self._map_batches(X, bound)

    def _single_rbm(self):
        """``log_likelihood_bounds`` exists for a single RBM only."""
        n_layers = len(self.nets_) if hasattr(self, "nets_") else 1 + len(self._hidden_sizes())
        if n_layers > 1:
            raise AttributeError(
                "log_likelihood_bounds is defined for a single RBM (hidden_layer_sizes=()): a "
                "stack's log p(v) sums over its lower hidden layers too, and no upper bound on it "
                "comes from AIS. A stack's score_samples is its importance-weighted lower bound.")
        return True

    @available_if(_single_rbm)
    def log_likelihood_bounds(self, X, *, n_runs=10, n_betas=None, return_stderr=False):
        """Stochastic lower and upper bounds on the log-likelihood of each sample, in nats.

        Upper: -F(v) - log Z with ``log_partition_`` (as ``score_samples``). AIS estimates Z
        without bias, so its log Z is too low in expectation (Jensen's inequality), and an
        annealing too short to reach every mode of the RBM misses mass and makes it lower
        still: both make this value too high. It falls below log p(v) only by chance, by
        about ``log_partition_stderr_``. When log Z is exact, so is this value.

        Lower: reverse annealed importance sampling (RAISE; Burda, Grosse and Salakhutdinov,
        2015): ``n_runs`` chains start at each sample and are annealed back to the base-rate
        model along ``n_betas`` intermediate distributions. Their weights estimate without bias
        p_ann(v), the probability of v under the annealing model (a base-rate draw followed by
        the forward chain of AIS), so the log of their mean is too low in expectation, and
        p_ann tends to the RBM as ``n_betas`` grows. A short annealing gives a p_ann between
        the base-rate model and the RBM, below the RBM on the data the RBM models well (the
        usual case), so there too the value errs low; on a sample the base-rate model finds
        likelier than the RBM does it can err high. The chains use the same random numbers
        for every row, so a row's value does not depend on the other rows, and repeated calls
        agree.

        The gap between the two bounds how far each is from log p(v); both tighten as the
        betas grow (``n_ais_betas`` for the upper, ``n_betas`` for the lower).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1].
        n_runs : int, default=10
            RAISE chains per sample.
        n_betas : int, default=None
            Intermediate distributions of RAISE; None uses as many as the AIS estimate of
            log Z ended with (``log_partition_info_["n_betas"]``), or ``n_ais_betas`` when
            log Z is exact. The cost is proportional to n_samples * n_runs * n_betas.
        return_stderr : bool, default=False
            Also return the standard error of each bound.

        Returns
        -------
        lower : ndarray of shape (n_samples,)
            RAISE's stochastic lower bound on log p(v).
        upper : ndarray of shape (n_samples,)
            -F(v) - ``log_partition_``: a stochastic upper bound on log p(v) (exact when log Z
            is).
        lower_stderr, upper_stderr : ndarray of shape (n_samples,)
            Only with ``return_stderr=True``: the standard error of ``lower`` (delta method over
            the runs; NaN for one run) and of ``upper`` (``log_partition_stderr_``, shared by
            all samples). All arrays have X's dtype (float32 or float64).

        Raises
        ------
        AttributeError
            For a stack of RBMs (``hidden_layer_sizes`` not empty).

        See Also
        --------
        score_samples : The AIS estimate of log p(v), the upper value here.
        log_partition_info_ : How log Z was estimated.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, max_iter=2, log_partition="ais",
        ...                         n_ais_betas=200, random_state=0, device="cpu").fit(X)
        >>> lower, upper = rbm.log_likelihood_bounds(X[:4], n_runs=5)
        >>> lower.shape, upper.shape
        ((4,), (4,))
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        validate_parameter_constraints(
            {"n_runs": [Interval(Integral, 1, None, closed="left")],
             "n_betas": [Interval(Integral, 3, None, closed="left"), None],
             "return_stderr": ["boolean"]},
            {"n_runs": n_runs, "n_betas": n_betas, "return_stderr": return_stderr},
            caller_name="log_likelihood_bounds")
        info = self._log_partition()
        if n_betas is None:
            n_betas = info["n_betas"] if info["method"] == "ais" else self.n_ais_betas
        n_betas = int(n_betas)
        top = self.net_.module_
        device = self._device_()
        weight, hidden_bias, visible_bias = (p.detach().double() for p in
                                             (top.weight, top.hidden_bias, top.visible_bias))
        base = self._base_rate_logits(device)
        seed = int(np.random.SeedSequence([self._bound_seed, n_betas]).generate_state(1)[0])
        n = X.shape[0]
        chunk = max(1, RAISE_CHUNK_FLOATS // (ANNEAL_BLOCK * n_runs * (max(weight.shape) + 1)))
        bounds, spread = np.empty((4, n)), np.zeros(n)
        with torch.no_grad(), _engine.torch_threads(self._scoring_threads(min(n, chunk) * n_runs)), \
                self._progress(-(-n // chunk) * n_betas, f"RAISE, {n_betas} betas") as bar:
            for rows in gen_batches(n, chunk):
                xb = X[rows]
                v = torch.as_tensor(xb.toarray() if sp.issparse(xb) else np.asarray(xb),
                                    dtype=torch.float64, device=device)
                generator = torch.Generator(device=device).manual_seed(seed)  # the same for all rows
                log_w = rbm_log_likelihood_raise(v, weight, hidden_bias, visible_bias, base,
                                                 n_runs=n_runs, n_betas=n_betas,
                                                 generator=generator, progress=bar.update)
                lower, lower_stderr, _, log_w_std = importance_summary(log_w)
                upper = -rbm_free_energy(v, weight, hidden_bias, visible_bias) - info["log_partition"]
                bounds[:3, rows] = torch.stack([lower, upper, lower_stderr]).cpu().numpy()
                spread[rows] = log_w_std.cpu().numpy()
        bounds[3] = info["stderr"]
        if n and np.median(spread) > RAISE_MAX_SPREAD:
            _engine.warn(
                f"RAISE has not converged: the log-weights of its {n_runs} runs per sample spread "
                f"by {np.median(spread):.2f} nats (median over samples; above {RAISE_MAX_SPREAD}), "
                "so the lower values rest on a few runs each, and the annealing model they bound "
                "may differ from the RBM by more than the gap shows, in either direction. Increase "
                "n_betas.", UserWarning)
        out = tuple(b.astype(X.dtype) for b in bounds)
        return out if return_stderr else out[:2]

    def pseudo_likelihood(self, X):
        """scikit-learn's ``BernoulliRBM.score_samples``, for side-by-side comparison.

        n_features * log sigmoid(F(v~) - F(v)), with v~ the sample with one feature, chosen at
        random (seeded by ``random_state``), flipped; of the bottom RBM for a stack. A proxy for
        the log-likelihood, not a log-likelihood.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in [0, 1].

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Non-positive values of X's dtype (float32 or float64). With ``random_state=None``
            the flipped features, and so the values, change from call to call.

        See Also
        --------
        score_samples : The log-likelihood itself.
        sklearn.neural_network.BernoulliRBM.score_samples : The same proxy, in NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, max_iter=2, random_state=0,
        ...                         device="cpu").fit(X)
        >>> pl = rbm.pseudo_likelihood(X)
        >>> pl.shape
        (50,)
        >>> bool((pl <= 0).all())
        True
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        n, d = X.shape
        rng = check_random_state(self.random_state)
        flip = rng.randint(0, d, n)
        bottom = self._inference_module(X.dtype)[0]
        device = self._device_()
        out = np.empty(n, dtype=X.dtype)
        with torch.inference_mode():
            for rows in gen_batches(n, INFERENCE_BATCH_SIZE):
                xb = X[rows]
                xb = np.array(xb.toarray() if sp.issparse(xb) else xb, copy=True)
                v = torch.from_numpy(xb).to(device)
                index = torch.from_numpy(flip[rows]).to(device)
                flipped = v.clone()
                picked = flipped.gather(1, index[:, None])
                flipped.scatter_(1, index[:, None], 1.0 - picked)
                gap = bottom.free_energy(flipped) - bottom.free_energy(v)
                out[rows] = (-d * torch.nn.functional.softplus(-gap)).cpu().numpy()
        return out

    def sample(self, n_samples=1, random_state=None, *, n_steps=1000):
        """Draw samples from the model: a Gibbs chain in the top RBM, then a down-pass.

        The chains start from the base-rate model of the top RBM's training input, run
        ``n_steps`` sweeps, and each lower layer's visible units are then sampled given the
        layer above.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the chains.
        n_steps : int, default=1000
            Gibbs sweeps in the top RBM; 0 keeps the starting draw from the base-rate model.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Binary samples (float64).

        Raises
        ------
        ValueError
            When ``n_samples`` is not a positive integer.

        See Also
        --------
        inverse_transform : The down-pass that gives probabilities instead of samples.
        score_samples : The log-likelihood of the model that is sampled.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ae import BernoulliRBMStack
        >>> X = (np.random.RandomState(0).rand(50, 8) > 0.5).astype(np.float32)
        >>> rbm = BernoulliRBMStack(n_components=3, hidden_layer_sizes=(6,), max_iter=2,
        ...                         random_state=0, device="cpu").fit(X)
        >>> S = rbm.sample(4, random_state=0, n_steps=10)
        >>> S.shape, S.dtype
        ((4, 8), dtype('float64'))
        >>> set(np.unique(S)) <= {0.0, 1.0}
        True
        """
        check_is_fitted(self)
        self._check_n_samples(n_samples)
        device = self._device_()
        generator = torch.Generator(device=device).manual_seed(_seed(check_random_state(random_state)))
        layers = self._inference_module(np.float64)
        top = layers[-1]
        marginals = torch.sigmoid(top.base_rate_logits().to(device))
        with torch.inference_mode():
            v = top.bernoulli(marginals.expand(int(n_samples), -1), generator)
            h = top.bernoulli(top.hidden_probs(v), generator)
            if n_steps > 0:
                v, h = top.gibbs(h, n_steps, generator)
            for layer in reversed(list(layers)[:-1]):
                v = layer.bernoulli(layer.visible_probs(v), generator)
        return v.cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags
