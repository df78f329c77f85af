"""LikelihoodOutlierDetector: a threshold on any estimator's ``score_samples``."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy import special
from sklearn.base import BaseEstimator, MetaEstimatorMixin, OutlierMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import ClassifierTags, gen_batches, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_array, check_is_fitted

# ``contamination="auto"``: Tukey's lower fence, first quartile minus this many interquartile ranges.
TUKEY_K = 1.5

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


class LikelihoodOutlierDetector(MetaEstimatorMixin, OutlierMixin, BaseEstimator):
    """Outlier detector that thresholds the ``score_samples`` of any density-like estimator.

    ``fit`` fits a clone of ``estimator`` on X and sets the threshold ``offset_`` from the
    scores of the training samples. Higher ``score_samples`` means more normal: for the
    estimators of this package, for ``PCA``, ``GaussianMixture`` and ``KernelDensity`` it is a
    log-likelihood in nats. ``decision_function(X) = score_samples(X) - offset_`` is negative
    for outliers, and ``predict`` returns +1 for inliers and -1 for outliers, scikit-learn's
    convention (PyOD's detectors return 0 / 1 instead). PyOD's names are there too, with PyOD's
    sign: ``decision_scores_`` (training outlier scores, higher is more abnormal),
    ``threshold_`` on them, and ``predict_proba`` (the outlier probability in column 1).

    Parameters
    ----------
    estimator : estimator object
        An unsupervised estimator with ``fit`` and ``score_samples``: one of this package's,
        ``PCA``, ``GaussianMixture``, ``KernelDensity``, or a ``Pipeline`` ending in one. It is
        cloned; the clone is fitted on X without y.
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

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.
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
    >>> detector = LikelihoodOutlierDetector(GaussianMixture(random_state=0), contamination=0.05)
    >>> labels = detector.fit_predict(X)
    >>> labels[95:]
    array([-1, -1, -1, -1, -1])
    >>> int((labels == -1).sum())
    5
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "score_samples"])],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
    }

    def __init__(self, estimator, contamination="auto"):
        self.estimator = estimator
        self.contamination = contamination

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
        if _num_samples(X) == 1:  # refused before a model is trained on one row
            self._check_n_samples(X)
        estimator = clone(self.estimator).fit(X, **params)
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
        """The estimator's ``score_samples``: higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score, passed to the fitted estimator as it is.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``estimator_.score_samples(X)``, unchanged (a log-likelihood in nats for this
            package's estimators).

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
        return MetadataRouter(owner=self).add(
            estimator=self.estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.positive_only = inner.input_tags.positive_only
        tags.non_deterministic = inner.non_deterministic
        # Two classes, inlier and outlier: predict_proba has two columns. scikit-learn's
        # sparse-input check reads this tag for any estimator with predict_proba.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags
