"""LikelihoodOutlierDetector: a threshold on an estimator's ``score_samples``, or on the
recommended scorer's (``_LikelihoodEnsemble``) when no estimator is given."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import special
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import (
    ClassifierTags,
    check_random_state,
    gen_batches,
    get_tags,
    metadata_routing,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted, validate_data

# ``contamination="auto"``: Tukey's lower fence, first quartile minus this many interquartile ranges.
TUKEY_K = 1.5

# The interquartile range of a normal distribution, in standard deviations.
IQR_TO_STD = 1.3489795003921634

# Sparse input is scored in dense blocks of at most this many values (32 MiB of float64).
DENSE_BLOCK_VALUES = 1 << 22


def _score_samples(estimator, X):
    """``estimator.score_samples(X)``; sparse X is scored in dense blocks of rows.

    A sparse X reaches the detector only when the estimator's tags say its ``fit`` accepts
    sparse input; its ``score_samples`` may still want dense input (``PCA``'s does), so the
    detector densifies a block of rows at a time, with memory bounded by the block.
    """
    if not sp.issparse(X):
        return estimator.score_samples(X)
    X = X.tocsr()
    step = max(1, DENSE_BLOCK_VALUES // max(1, X.shape[1]))
    return np.concatenate([np.asarray(estimator.score_samples(X[rows].toarray()))
                           for rows in gen_batches(X.shape[0], step)])


def _estimator_has(name):
    def check(self):
        # the fitted estimator when there is one, else the unfitted parameter
        return hasattr(getattr(self, "estimator_", self.estimator), name)

    return check


def _quantile_ready(scores):
    """Scores that ``np.percentile`` can interpolate, with their order kept.

    Log-likelihoods can be ``-inf`` (a point outside a compact kernel's support, a zero
    probability); interpolating between two infinities gives NaN. Each infinite score is
    replaced by a finite stand-in just beyond the finite ones, so it still ranks lowest (or
    highest) and a threshold that falls among them still flags every such point.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("The estimator's score_samples returned NaN on the training data; "
                         "a threshold cannot be set on NaN scores.")
    finite = np.isfinite(scores)
    if finite.all():
        return scores
    if not finite.any():
        raise ValueError("The estimator's score_samples is infinite on every training sample; "
                         "a threshold cannot be set on it.")
    lo, hi = scores[finite].min(), scores[finite].max()
    margin = max(hi - lo, 1.0)
    return np.where(scores == -np.inf, lo - margin, np.where(scores == np.inf, hi + margin, scores))


def _robust_center_scale(X):
    """Per-feature median and robust scale: the interquartile range / 1.349 (the standard
    deviation for normal data), the standard deviation where the interquartile range is 0 (a
    feature with one dominant value), 0 for a constant feature."""
    center = np.median(X, axis=0)
    q1, q3 = np.percentile(X, [25.0, 75.0], axis=0)
    scale = (q3 - q1) / IQR_TO_STD
    tiny = 1e-12 * np.maximum(1.0, np.abs(center))
    scale = np.where(scale > tiny, scale, X.std(axis=0))
    return center, np.where(scale > tiny, scale, 0.0)


def _robust_normalizer(train_scores):
    """Median and interquartile range of a member's training scores (the IQR falls back to the
    standard deviation, then to 1, when the scores are mostly tied)."""
    q1, median, q3 = np.percentile(train_scores, [25.0, 50.0, 75.0])
    spread = q3 - q1
    if not spread > 0:
        spread = float(np.std(train_scores)) or 1.0
    return float(median), float(spread)


class _LikelihoodEnsemble(BaseEstimator):
    """The scorer of ``LikelihoodOutlierDetector()``: bagged small autoencoders and RBMs,
    refitted on the training rows that a first round finds typical.

    Chosen by ``benchmarks/study_outlier_default.py`` over the 21 ODDS sets (see its results).
    ``fit`` (1) scales every feature by its median and robust scale (interquartile range / 1.349,
    the standard deviation where the range is 0) and drops constant features; then, for each
    family of members, ``AutoencoderTransformer`` and (with ``rbm_weight > 0``)
    ``BernoulliRBMStack``: (2) trains ``n_estimators`` members, each on its own random subsample
    of at most ``max_samples`` rows; (3) scores every training row with each member, puts each
    member's log-likelihoods on a common scale (minus their median, over their interquartile
    range) and averages them; (4) for ``n_rounds - 1`` more rounds, sets aside the fraction
    ``trim`` of training rows with the lowest average and trains fresh members on subsamples of
    the rest. The last round's members make the score.

    ``score_samples`` is the weighted average of the last round's normalised member
    log-likelihoods, the autoencoders' family weighing 1 and the RBMs' ``rbm_weight``: higher
    is more normal, 0 is a typical training row's score, -1 one interquartile range of member
    scores further out. An autoencoder member (one tanh layer of ``hidden_layer_sizes``, a code
    of ``min(max_components, n_features // 2)`` units, ``sample_passes`` rows seen in training,
    as epochs between ``min_epochs`` and ``max_epochs``) scores by its Gaussian reconstruction
    log-likelihood, plus with ``code_density=True`` the log-density of the row's code under a
    Gaussian fitted to the training codes. An RBM member (``rbm_components`` hidden units,
    trained by CD-1 for 10 epochs in minibatches of 50, learning rate 0.1 decayed linearly)
    sees the features min-max scaled on its subsample and clipped to [0, 1], and scores by its
    log-likelihood (up to log Z, a constant that the normalisation removes).
    """

    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "trim": [Interval(Real, 0, 1, closed="left")],
        "sample_passes": [Interval(Integral, 1, None, closed="left")],
        "min_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "max_components": [Interval(Integral, 1, None, closed="left")],
        "code_density": ["boolean"],
        "rbm_weight": [Interval(Real, 0, None, closed="left")],
        "rbm_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
    }

    def __init__(self, n_estimators=5, max_samples=512, n_rounds=2, trim=0.1,
                 sample_passes=10_000, min_epochs=10, max_epochs=100, hidden_layer_sizes=(64,),
                 max_components=16, code_density=False, rbm_weight=0.5, rbm_components=64,
                 random_state=None, device="auto"):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.n_rounds = n_rounds
        self.trim = trim
        self.sample_passes = sample_passes
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_components = max_components
        self.code_density = code_density
        self.rbm_weight = rbm_weight
        self.rbm_components = rbm_components
        self.random_state = random_state
        self.device = device

    #: how an RBM member trains (see ``_rbm``): study stage ``rbm_training``
    _rbm_training = dict(learning_rate=0.1, learning_rate_schedule="linear", batch_size=50,
                         max_iter=10, n_gibbs_steps=1, persistent=False)

    def _scale(self, X):
        """Robust z-scores of the kept features, in X's dtype."""
        return ((X[:, self.features_] - self.center_) / self.scale_).astype(X.dtype, copy=False)

    def _autoencoder(self, Z, random_state):
        from ._autoencoder import AutoencoderTransformer

        n, d = Z.shape
        epochs = int(np.clip(np.ceil(self.sample_passes / n), self.min_epochs, self.max_epochs))
        # the settings the detector was studied with, named (as for the RBMs): the autoencoder's
        # defaults of weight decay and noise were later chosen for held-out log-likelihoods
        model = AutoencoderTransformer(
            n_components=int(np.clip(d // 2, 1, self.max_components)),
            hidden_layer_sizes=self.hidden_layer_sizes, max_iter=epochs, alpha=1e-4,
            noise_model="diagonal", random_state=random_state, device=self.device).fit(Z)
        code = None
        if self.code_density:
            codes = model.transform(Z).astype(np.float64)
            cov = np.atleast_2d(np.cov(codes, rowvar=False))
            cov += (1e-3 * np.trace(cov) / len(cov) + 1e-9) * np.eye(len(cov))
            code = (codes.mean(0), np.linalg.inv(cov), np.linalg.slogdet(cov)[1])
        return model, code

    def _rbm(self, Z, random_state):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import MinMaxScaler

        from ._rbm import BernoulliRBMStack

        # log Z only shifts every score of a member by one constant, which the member's
        # normalisation subtracts again: the cheapest AIS estimate does. The training settings
        # are named, not BernoulliRBMStack's defaults, so that a change of those defaults (made
        # for log-likelihoods, not outlier ranking) does not change the detector unstudied.
        rbm = BernoulliRBMStack(n_components=self.rbm_components, log_partition="ais",
                                n_ais_runs=2, n_ais_betas=3, random_state=random_state,
                                device=self.device, **self._rbm_training)
        return make_pipeline(MinMaxScaler(clip=True), rbm).fit(Z), None

    @staticmethod
    def _member_scores(model, code, Z):
        """A member's log-likelihood of each row (plus its code's log-density, if kept)."""
        scores = np.asarray(model.score_samples(Z), dtype=np.float64)
        if code is not None:
            mean, precision, logdet = code
            diff = model.transform(Z).astype(np.float64) - mean
            scores -= 0.5 * (np.einsum("ij,jk,ik->i", diff, precision, diff) + logdet)
        return scores

    def _family(self, make, Z, rng):
        """``n_rounds`` rounds of ``n_estimators`` members made by ``make``; the last round's
        members as ``(model, code, median, spread)``."""
        pool = np.arange(len(Z))
        for round_ in range(self.n_rounds):
            members, normalised = [], []
            for _ in range(self.n_estimators):
                rows = pool if len(pool) <= self.max_samples else np.sort(
                    rng.choice(pool, self.max_samples, replace=False))
                model, code = make(Z[rows], int(rng.randint(np.iinfo(np.int32).max)))
                scores = self._member_scores(model, code, Z)
                median, spread = _robust_normalizer(scores)
                members.append((model, code, median, spread))
                normalised.append((scores - median) / spread)
            if round_ + 1 < self.n_rounds and self.trim > 0:
                average = np.mean(normalised, axis=0)
                keep = np.flatnonzero(average >= np.quantile(average, self.trim))
                pool = keep if len(keep) >= 2 else pool
        return members

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Scale X, then train the members round by round.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        X = validate_data(self, X, dtype=(np.float64, np.float32))
        if X.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples; got "
                             f"n_samples={X.shape[0]}.")
        rng = check_random_state(self.random_state)
        center, scale = _robust_center_scale(X.astype(np.float64))
        features = np.flatnonzero(scale > 0)
        if features.size == 0:  # every feature constant: keep them, in their own units
            features, scale = np.arange(X.shape[1]), np.ones(X.shape[1])
        self.features_, self.center_, self.scale_ = features, center[features], scale[features]
        Z = self._scale(X)
        families = [(1.0, self._autoencoder)]
        if self.rbm_weight > 0:
            families.append((self.rbm_weight, self._rbm))
        total = sum(weight for weight, _ in families)
        estimators = []
        with warnings.catch_warnings():  # fixed epoch budgets and a rough log Z, on purpose
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="AIS has not converged")
            for weight, make in families:
                members = self._family(make, Z, rng)
                estimators += [(weight / total / len(members), *m) for m in members]
        self.estimators_ = estimators
        return self

    def score_samples(self, X):
        """Weighted average of the members' normalised log-likelihoods: higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            0 for a typical training row; -1 one interquartile range of the members' training
            scores further out.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        Z = self._scale(X)
        return sum(weight * (self._member_scores(model, code, Z) - median) / spread
                   for weight, model, code, median, spread in self.estimators_)


class LikelihoodOutlierDetector(MetaEstimatorMixin, OutlierMixin, BaseEstimator):
    """Outlier detector that thresholds the ``score_samples`` of a density-like estimator.

    ``fit`` fits a scorer on X and sets the threshold ``offset_`` from the scores of the
    training samples. ``decision_function(X) = score_samples(X) - offset_`` is negative for
    outliers, and ``predict`` returns +1 for inliers and -1 for outliers, scikit-learn's
    convention (PyOD's detectors return 0 / 1 instead). PyOD's names are there too, with PyOD's
    sign: ``decision_scores_`` (training outlier scores, higher is more abnormal),
    ``threshold_`` on them, and ``predict_proba`` (the outlier probability in column 1).

    With no estimator, the scorer is the recommended one: an ensemble of this package's
    ``AutoencoderTransformer`` and ``BernoulliRBMStack`` with the preprocessing they need,
    chosen by a study over the 21 ODDS outlier sets (``benchmarks/study_outlier_default.py``).
    The features are scaled by their medians and interquartile ranges (the standard deviation
    where that range is 0; constant features dropped). Each member is a small model trained on
    its own random subsample of at most 512 rows (the RBMs see it min-max scaled to [0, 1]):
    the autoencoders for an epoch budget sized to the subsample, the RBMs by CD-1 for 10 epochs
    in minibatches of 50. For each family, a first round of members
    scores the training rows, the 10% most abnormal are set aside and a second round is trained
    on subsamples of the rest. ``score_samples`` is then a weighted average over the second
    rounds' members (the autoencoders weighing 1 in all, the RBMs 0.5) of their log-likelihoods,
    each minus its median over the training rows and divided by its interquartile range: a
    dimensionless score, 0 for a typical training row, no longer a log-likelihood in nats.
    Given an estimator, the detector wraps a clone of it and ``score_samples`` is the
    estimator's: a log-likelihood in nats for this package's estimators, ``PCA``,
    ``GaussianMixture`` and ``KernelDensity``. Either way, higher means more normal.

    Parameters
    ----------
    estimator : estimator object or None, default=None
        An unsupervised estimator with ``fit`` and ``score_samples``: one of this package's,
        ``PCA``, ``GaussianMixture``, ``KernelDensity``, or a ``Pipeline`` ending in one. It is
        cloned; the clone is fitted on X without y. None: the recommended ensemble above.
    contamination : "auto" or float in (0, 0.5], default="auto"
        How the threshold is set from the training scores.

        - float: the expected fraction of outliers in the training data. ``offset_`` is that
          percentile of the training scores, so this fraction of the training samples is flagged
          (up to ties), as in ``IsolationForest``.
        - ``"auto"``: Tukey's lower fence on the training scores,
          ``offset_ = Q1 - 1.5 * (Q3 - Q1)``, where Q1 and Q3 are their quartiles. A
          log-likelihood has no natural zero, so ``IsolationForest``'s fixed ``-0.5`` would mean
          nothing here. The fence presumes no outlier fraction: it flags the samples that
          stand far out in the low tail of the score distribution, however many there are; it
          does not change when the scores are shifted or rescaled (nats or bits, normalising
          constants dropped or not); and the quartiles are unaffected by up to a quarter of the
          training data being outliers. On clean data it flags few samples: for a correctly
          specified Gaussian in d dimensions, 7.6% at d = 1, 1.9% at d = 10 and 0.75% at
          d = 100 (the chi-squared law of -2 log-likelihood grows less skewed with d). Set a
          float when the outlier rate is known.
    random_state : int, RandomState instance or None, default=None
        Seeds the recommended ensemble (its subsamples and its members' training). Used only
        when ``estimator`` is None; a given estimator keeps its own ``random_state``.
    device : str, default="auto"
        Where the recommended ensemble's members train and score: ``"auto"`` (CUDA when
        available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. Used only when ``estimator`` is None
        (a given estimator keeps its own ``device``), but checked in either form: a device that
        this machine does not have is a ``ValueError`` at ``fit``.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``, or the fitted recommended ensemble.
    offset_ : float
        The threshold on ``score_samples``: samples scoring below it are outliers.
    decision_scores_ : ndarray of shape (n_samples,)
        The outlier scores of the training samples, ``-score_samples(X_train)``: higher is more
        abnormal, as PyOD's attribute of that name.
    threshold_ : float
        The threshold on the outlier score, ``-offset_``: samples whose outlier score is above
        it are outliers, as PyOD's attribute of that name.
    n_features_in_ : int
        Number of features seen during fit (from ``estimator_``).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when the estimator records them.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Sets ``offset_`` from ``contamination`` the same way.
    sklearn.neighbors.LocalOutlierFactor : A density-ratio outlier detector.
    AutoencoderTransformer : Its ``score_samples`` is a reconstruction log-likelihood.

    Notes
    -----
    The threshold is set on the scores of the training samples themselves. An estimator that
    fits its training samples much better than new ones (an autoencoder trained far past
    convergence, a ``KernelDensity`` with a small bandwidth) scores new inliers lower than the
    training ones, and then flags more new samples than ``contamination`` says. Sample weights
    passed to ``fit`` go to the estimator; the percentile that sets ``offset_`` is unweighted,
    as in ``IsolationForest``. Sparse input is accepted when the estimator's tags declare it
    (``BernoulliRBMStack``, ``PCA``) and refused with scikit-learn's ``TypeError`` otherwise; the
    detector scores it in dense blocks of rows, for estimators whose ``score_samples`` wants
    dense input. ``y`` is ignored: outlier labels never reach the estimator, so
    labels given for scoring in ``GridSearchCV`` cannot leak into the fit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.mixture import GaussianMixture
    >>> from sklearn_ae import LikelihoodOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
    >>> detector = LikelihoodOutlierDetector(random_state=0).fit(X)
    >>> detector.predict(X[95:])
    array([-1, -1, -1, -1, -1])
    >>> detector.decision_scores_.shape
    (100,)
    >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0), contamination=0.05)
    >>> labels = detector.fit_predict(X)
    >>> labels[95:]
    array([-1, -1, -1, -1, -1])
    >>> int((labels == -1).sum())
    5
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
        "device": [str],
    }
    _required_parameters = []
    # predict_proba's ``method`` is PyOD's conversion choice, not metadata to route: without
    # this, scikit-learn would add a ``set_predict_proba_request`` for it
    __metadata_request__predict_proba = {"method": metadata_routing.UNUSED}

    def __init__(self, estimator=None, contamination="auto", *, random_state=None, device="auto"):
        self.estimator = estimator
        self.contamination = contamination
        self.random_state = random_state
        self.device = device

    def _scorer(self):
        """A fresh, unfitted scorer: a clone of ``estimator``, or the recommended ensemble."""
        if self.estimator is None:
            return _LikelihoodEnsemble(random_state=self.random_state, device=self.device)
        return clone(self.estimator)

    @_fit_context(prefer_skip_nested_validation=False)  # the estimator validates its own params
    def fit(self, X, y=None, **fit_params):
        """Fit the estimator on X and set the threshold ``offset_`` from the training scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, passed to the estimator as it is.
        y : None
            Ignored: the estimator is fitted without labels.
        **fit_params : dict
            Passed to the estimator's ``fit`` (through metadata routing when it is enabled).

        Returns
        -------
        self : object
            The fitted detector.

        Raises
        ------
        ValueError
            When X has fewer than 2 samples, or the training scores are NaN or all infinite.
        TypeError
            When X is sparse and the estimator's tags do not declare sparse input.

        Notes
        -----
        Nothing is stored until the estimator is fitted and every check has passed: a fit that
        raises leaves a fitted detector exactly as it was, and an unfitted one unfitted.

        See Also
        --------
        predict : Label samples as inliers or outliers with the threshold set here.
        decision_function : The scores shifted by the threshold.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
        >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0),
        ...                                      contamination=0.05).fit(X)
        >>> detector.estimator_
        GaussianMixture(random_state=0)
        >>> isinstance(detector.offset_, float)
        True
        """
        if _routing_enabled():
            params = process_routing(self, "fit", **fit_params).estimator.fit
        else:
            params = fit_params
        # Everything is computed into locals and assigned only once every check has passed:
        # a failed fit leaves a fitted detector as it was and an unfitted one unfitted.
        self._check_sparse(X)
        from ._engine import resolve_device

        resolve_device(self.device)  # an unusable device is refused in either form
        # one row of a 2-D X is refused before a model is trained on it; any other shape is
        # left to the estimator's validation and its error (a 3-D array is one "sample" too)
        if len(getattr(X, "shape", ())) == 2 and _num_samples(X) == 1:
            self._check_n_samples(X)
        estimator = self._scorer().fit(X, **params)
        self._check_n_samples(X)
        raw_scores = _score_samples(estimator, X)
        scores = _quantile_ready(raw_scores)
        if self.contamination == "auto":
            q1, q3 = np.percentile(scores, [25.0, 75.0])
            offset = float(q1 - TUKEY_K * (q3 - q1))
        else:
            offset = float(np.percentile(scores, 100.0 * self.contamination))
        self.estimator_ = estimator
        self.offset_ = offset
        self.decision_scores_ = -np.asarray(raw_scores, dtype=np.float64)
        self.threshold_ = -offset
        return self

    def _check_n_samples(self, X):
        if _num_samples(X) < 2:
            raise ValueError(
                f"{type(self).__name__} sets its threshold from the spread of the training "
                f"scores and needs at least 2 samples; got n_samples={_num_samples(X)}.")

    def _check_sparse(self, X):
        """Refuse sparse input with scikit-learn's error unless the estimator's tags accept it."""
        if sp.issparse(X) and not get_tags(self).input_tags.sparse:
            check_array(X, accept_sparse=False)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "offset_")

    def score_samples(self, X):
        """The scorer's ``score_samples``: higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score, passed to the fitted estimator as it is.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``estimator_.score_samples(X)``, unchanged: a log-likelihood in nats for this
            package's estimators; with no estimator given, the recommended ensemble's weighted
            average of its members' normalised log-likelihoods (0 for a typical training
            sample, -1 one interquartile range of the members' training scores further out).

        See Also
        --------
        decision_function : The scores minus the threshold ``offset_``.
        predict : Inlier / outlier labels.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
        >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0),
        ...                                      contamination=0.05).fit(X)
        >>> scores = detector.score_samples(X)
        >>> scores.shape
        (100,)
        >>> bool(scores[95:].max() < scores[:95].min())  # the far points are the least likely
        True
        """
        check_is_fitted(self)
        self._check_sparse(X)
        return _score_samples(self.estimator_, X)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers, non-negative for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score, passed to the fitted estimator as it is.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            The scores shifted by the threshold: below 0 for outliers.

        See Also
        --------
        score_samples : The unshifted scores.
        predict : The sign of ``decision_function`` as +1 / -1 labels.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
        >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0),
        ...                                      contamination=0.05).fit(X)
        >>> decision = detector.decision_function(X)
        >>> decision.shape
        (100,)
        >>> bool((decision[95:] < 0).all())
        True
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """+1 for inliers, -1 for outliers (``decision_function(X) < 0``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to label, passed to the fitted estimator as it is.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Integers: +1 for inliers, -1 for outliers.

        See Also
        --------
        decision_function : The signed distance to the threshold behind the labels.
        fit_predict : Fit, then label the training data.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
        >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0),
        ...                                      contamination=0.05).fit(X)
        >>> detector.predict(X[93:])
        array([ 1,  1, -1, -1, -1, -1, -1])
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def predict_proba(self, X, method="linear"):
        """Outlier probability in [0, 1], from the outlier score, as PyOD's detectors give it.

        The outlier score is ``-score_samples(X)``; the training samples' outlier scores are
        ``decision_scores_``. Two conversions, PyOD's:

        - ``"linear"``: min-max scaling, ``(score - min) / (max - min)`` with the minimum and
          maximum of ``decision_scores_``, clipped to [0, 1]: a sample more outlying than every
          training sample gets 1.
        - ``"unify"``: ``erf((score - mean) / (std * sqrt(2)))`` with the mean and standard
          deviation of ``decision_scores_``, clipped to [0, 1] (Kriegel et al., 2011): every
          sample scoring below the training mean gets 0.

        Both are non-decreasing in the outlier score, so they rank samples as
        ``decision_function`` does (ties aside, where the clipping merges scores). They are
        not calibrated probabilities and do not depend on ``contamination``: a probability
        above 0.5 does not mean ``predict`` gives -1. Infinite training scores are left out of
        the minimum, maximum, mean and standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score, passed to the fitted estimator as it is.
        method : {"linear", "unify"}, default="linear"
            The conversion from outlier score to probability.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0: the probability of being an inlier (label +1); column 1: of being an
            outlier (label -1), PyOD's column order. Rows sum to 1.

        See Also
        --------
        decision_function : The score the probabilities are computed from, shifted.
        predict : Inlier / outlier labels from the threshold ``offset_``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(95, 2), rng.uniform(6, 8, size=(5, 2))])
        >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0),
        ...                                      contamination=0.05).fit(X)
        >>> proba = detector.predict_proba(X[93:])
        >>> proba.shape
        (7, 2)
        >>> bool((proba[2:, 1] > proba[:2, 1].max()).all())  # the far points
        True
        """
        if method not in ("linear", "unify"):
            raise ValueError(f"method must be 'linear' or 'unify'; got {method!r}.")
        outlier_scores = -np.asarray(self.score_samples(X), dtype=np.float64)
        train = self.decision_scores_[np.isfinite(self.decision_scores_)]
        with np.errstate(invalid="ignore", over="ignore"):
            if method == "linear":
                low, span = train.min(), np.ptp(train)
                # a zero range divides by 1, as MinMaxScaler does
                proba = (outlier_scores - low) / (span if span > 0 else 1.0)
            else:
                mean, std = train.mean(), train.std()
                if std > 0:
                    proba = special.erf((outlier_scores - mean) / (std * np.sqrt(2.0)))
                else:  # every training score equal: a step at that score
                    proba = (outlier_scores > mean).astype(np.float64)
        proba = np.clip(proba, 0.0, 1.0)
        return np.column_stack([1.0 - proba, proba])

    @available_if(_estimator_has("score"))
    def score(self, X, y=None):
        """The estimator's ``score``, e.g. the mean log-likelihood, for label-free model selection.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        return self.estimator_.score(X)

    @property
    def n_features_in_(self):
        """Number of features seen during fit."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute.") from exc
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features seen during fit."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no feature_names_in_ attribute.") from exc
        return self.estimator_.feature_names_in_

    def get_metadata_routing(self):
        """Route ``fit`` metadata (e.g. ``sample_weight``) to the estimator's ``fit``.

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter` that sends the metadata
            ``fit`` receives to the estimator's ``fit``, as the estimator requests it.

        See Also
        --------
        fit : Where the routed metadata is passed on.
        sklearn.set_config : ``enable_metadata_routing=True`` turns routing on.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn import config_context
        >>> from sklearn.neighbors import KernelDensity
        >>> from sklearn_ae import LikelihoodOutlierDetector
        >>> X = np.random.RandomState(0).randn(50, 2)
        >>> with config_context(enable_metadata_routing=True):
        ...     kde = KernelDensity().set_fit_request(sample_weight=True)
        ...     detector = LikelihoodOutlierDetector(kde)
        ...     routing = detector.get_metadata_routing()
        ...     _ = detector.fit(X, sample_weight=np.ones(50))
        >>> routing.consumes("fit", ["sample_weight"])
        {'sample_weight'}
        """
        router = MetadataRouter(owner=self)
        if self.estimator is None:  # the recommended scorer takes no metadata
            return router
        return router.add(
            estimator=self.estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._scorer())
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.positive_only = inner.input_tags.positive_only
        tags.non_deterministic = inner.non_deterministic
        # Two classes, inlier and outlier: predict_proba has two columns. scikit-learn's
        # sparse-input check reads this tag for any estimator with predict_proba.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags
