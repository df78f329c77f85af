"""LikelihoodOutlierDetector: thresholds, conventions, other estimators, model selection."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from scipy import special, stats
from sklearn import config_context
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import f1_score, make_scorer, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_estimator_sparse_tag,
    check_outliers_train,
    parametrize_with_checks,
)

import sklearn_ae
from sklearn_ae import _outlier
from sklearn_ae import AutoencoderTransformer, LikelihoodOutlierDetector

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, device="cpu")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture
def contaminated(rng):
    """200 standard-normal inliers in 5-D and 10 points far out (labels: +1 inlier, -1 outlier)."""
    X = np.vstack([rng.randn(200, 5), rng.uniform(5, 7, size=(10, 5)) * rng.choice([-1, 1], (10, 5))])
    y = np.r_[np.ones(200, dtype=int), -np.ones(10, dtype=int)]
    return X, y


# The detector wraps scikit-learn's density estimators as well as ours (ours are in test_common.py).
@parametrize_with_checks([
    LikelihoodOutlierDetector(GaussianMixture(random_state=0), contamination=0.1),
    LikelihoodOutlierDetector(make_pipeline(StandardScaler(), PCA(n_components=1))),
    LikelihoodOutlierDetector(KernelDensity(bandwidth=0.5)),
    LikelihoodOutlierDetector(PCA(n_components=1)),  # tags declare sparse input
])
def test_sklearn_compatible_with_sklearn_estimators(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- thresholds
def test_float_contamination_is_the_training_percentile(contaminated):
    X, _ = contaminated
    contamination = 10 / len(X)
    det = LikelihoodOutlierDetector(AutoencoderTransformer(n_components=2, **FAST), contamination)
    labels = det.fit_predict(X)
    scores = det.estimator_.score_samples(X)
    assert det.offset_ == pytest.approx(np.percentile(scores, 100 * contamination))
    assert np.sum(labels == -1) == 10
    np.testing.assert_allclose(det.score_samples(X), scores)
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)


def test_auto_is_tukeys_lower_fence(contaminated):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X)
    q1, q3 = np.percentile(det.estimator_.score_samples(X), [25, 75])
    assert det.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))


def test_auto_flags_the_documented_fraction_of_clean_gaussian_data():
    """With the right model, 'auto' flags P(chi2_d > Q3 + 1.5 IQR) of clean data (1.9% at d=10),
    the figure the docstring gives; a fixed fraction such as 10% would flag five times more."""
    d = 10
    X = np.random.RandomState(0).randn(20000, d)
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X)
    q1, q3 = stats.chi2.ppf([0.25, 0.75], d)
    expected = stats.chi2.sf(q3 + 1.5 * (q3 - q1), d)
    assert expected == pytest.approx(0.0193, abs=5e-4)
    assert np.mean(det.predict(X) == -1) == pytest.approx(expected, abs=0.004)


def test_auto_does_not_depend_on_the_units_of_the_score(contaminated):
    """Tukey's fence moves with the scores: nats vs bits, or a dropped constant, flag the same points."""
    X, _ = contaminated

    class Bits(GaussianMixture):
        def score_samples(self, X):
            return super().score_samples(X) / np.log(2) + 100.0

    nats = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X)
    bits = LikelihoodOutlierDetector(Bits(random_state=0)).fit(X)
    np.testing.assert_array_equal(nats.predict(X), bits.predict(X))


def test_auto_finds_planted_outliers_without_being_told_how_many(contaminated):
    X, y = contaminated
    det = LikelihoodOutlierDetector(make_pipeline(StandardScaler(), AutoencoderTransformer(
        n_components=2, **FAST))).fit(X)
    pred = det.predict(X)
    assert np.all(pred[y == -1] == -1)
    assert np.mean(pred[y == 1] == -1) < 0.05


def test_infinite_scores_are_ranked_lowest_not_nan(rng):
    """A compact kernel gives -inf outside its support (here, at two training points given zero
    weight); the threshold stays finite, never NaN, and those points are flagged."""
    X = np.vstack([rng.rand(100, 2), [[3.0, 3.0], [-2.0, 1.0]]])
    w = np.r_[np.ones(100), 0.0, 0.0]
    for contamination in ("auto", 0.01, 0.2):
        det = LikelihoodOutlierDetector(KernelDensity(kernel="tophat", bandwidth=0.5),
                                        contamination=contamination)
        with np.errstate(divide="ignore"):
            det.fit(X, sample_weight=w)
            assert np.isneginf(det.score_samples(X[-2:])).all()
            assert np.isfinite(det.offset_)
            np.testing.assert_array_equal(det.predict(X[-2:]), [-1, -1])
            assert not np.isnan(det.decision_function(X)).any()
            if contamination == 0.2:  # the threshold falls among the finite scores: at most 20%
                assert 2 < np.sum(det.predict(X) == -1) <= 21  # flagged (fewer on tied scores)


def test_nan_scores_are_an_error(rng):
    class Broken(GaussianMixture):
        def score_samples(self, X):
            return np.full(len(X), np.nan)

    with pytest.raises(ValueError, match="NaN"):
        LikelihoodOutlierDetector(Broken()).fit(rng.randn(20, 2))


OUR_SCORERS = [getattr(sklearn_ae, name) for name in sklearn_ae.__all__
               if inspect.isclass(getattr(sklearn_ae, name)) and hasattr(getattr(sklearn_ae, name), "partial_fit")]


@pytest.mark.parametrize("cls", OUR_SCORERS, ids=lambda c: c.__name__)
def test_wraps_every_estimator_of_the_package(cls, rng):
    """Data in [0, 1] so that Bernoulli-only models (the RBM stack) accept them."""
    X = np.vstack([(rng.rand(150, 8) < 0.2).astype(float), (rng.rand(10, 8) < 0.8).astype(float)])
    est = cls()
    small = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=10, random_state=0, device="cpu",
                 n_importance_samples=4, n_ais_runs=4, n_ais_betas=50)
    est.set_params(**{k: v for k, v in small.items() if k in est.get_params()})
    det = LikelihoodOutlierDetector(est, contamination=10 / 160).fit(X)
    scores = det.score_samples(X)
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)
    pred = det.predict(X)
    assert set(np.unique(pred)) == {-1, 1}
    assert np.sum(pred == -1) <= 10


# --------------------------------------------------------------------------- failed fits
def _state(det):
    return {k: v for k, v in vars(det).items() if k.endswith("_")}


class _BrokenOnSecondFit(GaussianMixture):
    """Scores NaN when fitted on fewer than 50 rows (a second, smaller fit)."""

    def score_samples(self, X):
        scores = super().score_samples(X)
        return scores if self.n_samples_ >= 50 else np.full(len(X), np.nan)

    def fit(self, X, y=None):
        self.n_samples_ = len(X)
        return super().fit(X)


def _bad_fit(X, bad):
    """An estimator and data that make ``fit`` fail in the way named by ``bad``."""
    with_nan = X.copy()
    with_nan[3, 2] = np.nan
    return {
        # KernelDensity fits one row without complaint: the detector must refuse it
        "one_row": (KernelDensity(), X[:1]),
        "nan_scores": (_BrokenOnSecondFit(random_state=0), X[:30]),
        "estimator_raises": (_BrokenOnSecondFit(random_state=0), with_nan),
        "sparse": (_BrokenOnSecondFit(random_state=0), sp.csr_matrix(X)),
    }[bad]


@pytest.mark.parametrize("bad", ["one_row", "nan_scores", "estimator_raises", "sparse"])
def test_a_failed_refit_changes_nothing(contaminated, bad):
    X, _ = contaminated
    estimator, bad_X = _bad_fit(X, bad)
    det = LikelihoodOutlierDetector(estimator).fit(X)
    before = _state(det)
    fitted, offset = det.estimator_, det.offset_
    pred, decision = det.predict(X), det.decision_function(X)
    with pytest.raises((ValueError, TypeError)):
        det.fit(bad_X)
    assert _state(det).keys() == before.keys()
    assert det.estimator_ is fitted and det.offset_ == offset
    np.testing.assert_array_equal(det.predict(X), pred)
    np.testing.assert_array_equal(det.decision_function(X), decision)
    assert det.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("bad", ["one_row", "nan_scores", "estimator_raises", "sparse"])
def test_a_failed_first_fit_leaves_the_detector_unfitted(contaminated, bad):
    X, _ = contaminated
    estimator, bad_X = _bad_fit(X, bad)
    det = LikelihoodOutlierDetector(estimator)
    with pytest.raises((ValueError, TypeError)):
        det.fit(bad_X)
    assert _state(det) == {}
    with pytest.raises(NotFittedError):
        det.predict(X)
    assert not hasattr(det, "n_features_in_")


def test_one_row_is_refused_before_the_estimator_is_fitted(rng):
    class Counting(GaussianMixture):
        fits = 0

        def fit(self, X, y=None):
            type(self).fits += 1
            return super().fit(X)

    with pytest.raises(ValueError, match="n_samples=1"):
        LikelihoodOutlierDetector(Counting()).fit(rng.randn(1, 3))
    assert Counting.fits == 0


# --------------------------------------------------------------------------- sparse input
def test_sparse_tag_follows_the_estimator_and_is_kept():
    """scikit-learn 1.9's check: the tags say sparse for PCA (whose own score_samples wants dense
    input) and the detector then fits and scores CSR; GaussianMixture's say dense, and CSR gets
    scikit-learn's TypeError naming sparse input."""
    assert get_tags(LikelihoodOutlierDetector(PCA(1))).input_tags.sparse
    assert not get_tags(LikelihoodOutlierDetector(GaussianMixture())).input_tags.sparse
    for est in (PCA(1), GaussianMixture(random_state=0), make_pipeline(StandardScaler(), PCA(1))):
        check_estimator_sparse_tag(type(est).__name__, LikelihoodOutlierDetector(est))


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_scores_as_the_dense_equivalent(rng, fmt, monkeypatch):
    """PCA fitted on sparse data scores every row as the dense data would, also when the rows
    are densified a few at a time (a small block forces several blocks)."""
    X = rng.randn(120, 6)
    X[rng.rand(*X.shape) < 0.6] = 0.0
    Xs = sp.csr_matrix(X).asformat(fmt)
    monkeypatch.setattr(_outlier, "DENSE_BLOCK_VALUES", 6 * 7)  # 7 rows a block
    det = LikelihoodOutlierDetector(PCA(2, svd_solver="arpack", random_state=0), 0.1).fit(Xs)
    dense = LikelihoodOutlierDetector(PCA(2, svd_solver="arpack", random_state=0), 0.1).fit(X)
    np.testing.assert_allclose(det.score_samples(Xs), dense.score_samples(X), rtol=1e-6)
    np.testing.assert_array_equal(det.predict(Xs), dense.predict(X))
    assert det.offset_ == pytest.approx(dense.offset_, rel=1e-6)


def test_sparse_input_reaches_the_rbm_stack(rng):
    """The RBM stack accepts sparse input itself: same scores as dense."""
    X = (rng.rand(80, 10) < 0.2).astype(float)
    kw = dict(n_components=4, max_iter=3, random_state=0, device="cpu")
    det = LikelihoodOutlierDetector(sklearn_ae.BernoulliRBMStack(**kw), 0.1).fit(sp.csr_matrix(X))
    dense = LikelihoodOutlierDetector(sklearn_ae.BernoulliRBMStack(**kw), 0.1).fit(X)
    np.testing.assert_allclose(det.score_samples(sp.csr_matrix(X)), dense.score_samples(X), rtol=1e-5)


def test_dense_only_estimators_refuse_sparse_at_scoring_time_too(contaminated):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X)
    for method in (det.score_samples, det.decision_function, det.predict):
        with pytest.raises(TypeError, match="[Ss]parse"):
            method(sp.csr_matrix(X))


# --------------------------------------------------------------------------- conventions
def test_predict_uses_sklearn_labels_not_pyod_labels(contaminated):
    X, _ = contaminated
    pred = LikelihoodOutlierDetector(PCA(n_components=2), contamination=0.1).fit_predict(X)
    assert pred.dtype.kind == "i"
    assert set(np.unique(pred)) == {-1, 1}
    assert np.all((LikelihoodOutlierDetector(PCA(2), contamination=0.1).fit(X).decision_function(X) < 0)
                  == (pred == -1))


def test_y_never_reaches_the_estimator(contaminated):
    X, y = contaminated

    class Spy(GaussianMixture):
        def fit(self, X, y=None):
            self.saw_y_ = y is not None
            return super().fit(X)

    det = LikelihoodOutlierDetector(Spy(random_state=0)).fit(X, y)
    assert det.estimator_.saw_y_ is False
    np.testing.assert_allclose(det.offset_, LikelihoodOutlierDetector(Spy(random_state=0)).fit(X).offset_)


def test_fit_params_reach_the_estimator(rng):
    X = rng.randn(60, 2)
    w = np.r_[np.ones(30), np.zeros(30) + 1e-9]
    plain = LikelihoodOutlierDetector(KernelDensity()).fit(X)
    weighted = LikelihoodOutlierDetector(KernelDensity()).fit(X, sample_weight=w)
    assert not np.allclose(plain.score_samples(X), weighted.score_samples(X))
    with config_context(enable_metadata_routing=True):
        routed = LikelihoodOutlierDetector(KernelDensity().set_fit_request(sample_weight=True))
        routed.fit(X, sample_weight=w)
    np.testing.assert_allclose(routed.score_samples(X), weighted.score_samples(X))


def test_errors(rng):
    X = rng.randn(30, 3)
    det = LikelihoodOutlierDetector(PCA(n_components=2))
    with pytest.raises(NotFittedError):
        det.predict(X)
    with pytest.raises(InvalidParameterError, match="contamination"):
        LikelihoodOutlierDetector(PCA(2), contamination=0.7).fit(X)
    with pytest.raises(InvalidParameterError, match="score_samples"):
        LikelihoodOutlierDetector(StandardScaler()).fit(X)
    det.fit(X)
    with pytest.raises(ValueError, match="3 features"):
        det.predict(X[:, :2])
    assert det.n_features_in_ == 3
    with pytest.raises(ValueError, match="n_samples=1"):
        LikelihoodOutlierDetector(KernelDensity()).fit(X[:1])


def test_pickle_and_clone_round_trip(contaminated):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(AutoencoderTransformer(n_components=2, **FAST)).fit(X)
    back = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(back.decision_function(X), det.decision_function(X))
    assert back.offset_ == det.offset_
    fresh = clone(det)
    assert not hasattr(fresh, "offset_") and fresh.get_params()["estimator__n_components"] == 2


def test_feature_names_pass_through(contaminated):
    pd = pytest.importorskip("pandas")
    X, _ = contaminated
    df = pd.DataFrame(X, columns=list("abcde"))
    det = LikelihoodOutlierDetector(PCA(n_components=2)).fit(df)
    assert list(det.feature_names_in_) == list("abcde")


# --------------------------------------------------------------------------- model selection
def test_grid_search_with_an_outlier_scoring(contaminated):
    """Labels in scikit-learn's convention (+1 inlier, -1 outlier): 'roc_auc' ranks by
    decision_function; an F1 on the outlier class (pos_label=-1) tunes the contamination."""
    X, y = contaminated
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    det = LikelihoodOutlierDetector(make_pipeline(StandardScaler(), AutoencoderTransformer(**FAST)))
    search = GridSearchCV(det, {"estimator__autoencodertransformer__n_components": [1, 3]},
                          scoring="roc_auc", cv=cv).fit(X, y)
    assert search.best_score_ > 0.95
    assert search.cv_results_["mean_test_score"].shape == (2,)
    best = search.best_estimator_
    assert roc_auc_score(y, best.decision_function(X)) == pytest.approx(
        roc_auc_score(y == 1, best.score_samples(X)))

    f1_outliers = make_scorer(f1_score, pos_label=-1)
    search = GridSearchCV(LikelihoodOutlierDetector(GaussianMixture(random_state=0)),
                          {"contamination": [0.01, 10 / 210, 0.3]}, scoring=f1_outliers, cv=cv).fit(X, y)
    assert search.best_params_["contamination"] == pytest.approx(10 / 210)


def test_grid_search_without_labels_uses_the_mean_log_likelihood(contaminated):
    X, _ = contaminated
    search = GridSearchCV(LikelihoodOutlierDetector(GaussianMixture(random_state=0)),
                          {"estimator__covariance_type": ["spherical", "full"]}, cv=3).fit(X)
    det = search.best_estimator_
    assert det.score(X) == pytest.approx(det.estimator_.score(X))


# --------------------------------------------------------------------------- real data
def test_odds_cardio_held_out(shared_data):
    """ODDS cardio (1831 x 21, 9.6% outliers), PyOD's protocol: stratified 60/40 split, seed 0.
    Our autoencoder's likelihood ranks the held-out outliers well (ROC-AUC 0.81 measured;
    IsolationForest gets 0.93 on the same split, see examples/plot_outlier_detection.py) and its
    'auto' threshold flags a fraction of the order of the true rate."""
    m = scipy.io.loadmat(shared_data / "odds" / "cardio.mat")
    X, y = m["X"].astype(np.float64), np.where(m["y"].ravel() == 1, -1, 1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    det = LikelihoodOutlierDetector(make_pipeline(StandardScaler(), AutoencoderTransformer(
        n_components=4, hidden_layer_sizes=(32,), max_iter=60, random_state=0, device="cpu")))
    det.fit(X_train)
    auc = roc_auc_score(y_test, det.decision_function(X_test))
    assert auc > 0.75
    flagged = np.mean(det.predict(X_test) == -1)
    assert 0.02 < flagged < 0.2


# --------------------------------------------------------------------------- PyOD's names
@pytest.mark.parametrize("contamination", ["auto", 0.05])
def test_pyod_attributes_are_the_training_outlier_scores(contaminated, contamination):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0), contamination).fit(X)
    np.testing.assert_allclose(det.decision_scores_, -det.score_samples(X))
    assert det.threshold_ == -det.offset_
    # PyOD's rule (score above threshold_) flags the same training rows as predict
    np.testing.assert_array_equal(det.decision_scores_ > det.threshold_, det.predict(X) == -1)
    if contamination != "auto":  # and threshold_ is PyOD's percentile of decision_scores_
        assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 95))


@pytest.mark.parametrize("method", ["linear", "unify"])
def test_predict_proba_is_in_the_unit_interval_and_monotone_in_the_score(contaminated, method):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X[::2])
    X_new = np.vstack([X, 10 * X[:5], np.zeros((1, 5))])  # far beyond and at the centre
    proba = det.predict_proba(X_new, method=method)
    assert proba.shape == (len(X_new), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(1), 1.0)
    order = np.argsort(det.decision_function(X_new))  # most outlying first
    assert np.all(np.diff(proba[order, 1]) <= 0)
    # far beyond every training score
    np.testing.assert_allclose(proba[len(X):len(X) + 5, 1], 1.0, atol=1e-9)
    assert proba[-1, 1] == 0.0  # the mode scores below every training outlier score


def test_predict_proba_follows_pyods_definitions(contaminated):
    X, _ = contaminated
    det = LikelihoodOutlierDetector(GaussianMixture(random_state=0)).fit(X[::2])
    train = det.decision_scores_
    outlier_score = -det.score_samples(X)
    linear = np.clip((outlier_score - train.min()) / (train.max() - train.min()), 0, 1)
    np.testing.assert_allclose(det.predict_proba(X)[:, 1], linear)
    np.testing.assert_allclose(det.predict_proba(X[::2])[:, 1].min(), 0.0)
    np.testing.assert_allclose(det.predict_proba(X[::2])[:, 1].max(), 1.0)
    unify = np.clip(special.erf((outlier_score - train.mean()) / (train.std() * np.sqrt(2))), 0, 1)
    np.testing.assert_allclose(det.predict_proba(X, method="unify")[:, 1], unify)
    with pytest.raises(ValueError, match="'linear' or 'unify'"):
        det.predict_proba(X, method="softmax")


def test_predict_proba_with_constant_or_infinite_training_scores(rng):
    """All training scores equal: linear divides by 1 (MinMaxScaler's rule), unify is a step.
    Infinite training scores (zero density) stay out of the statistics."""
    class Constant(GaussianMixture):
        def score_samples(self, X):
            return np.where(np.abs(X[:, 0]) > 5, -1.0, 0.0)

    X = rng.randn(50, 2).clip(-3, 3)
    det = LikelihoodOutlierDetector(Constant()).fit(X)
    probe = np.array([[0.0, 0.0], [9.0, 0.0]])
    np.testing.assert_array_equal(det.predict_proba(probe)[:, 1], [0.0, 1.0])
    np.testing.assert_array_equal(det.predict_proba(probe, method="unify")[:, 1], [0.0, 1.0])

    X = np.vstack([rng.rand(100, 2), [[3.0, 3.0]]])
    with np.errstate(divide="ignore"):
        det = LikelihoodOutlierDetector(KernelDensity(kernel="tophat", bandwidth=0.5)).fit(
            X, sample_weight=np.r_[np.ones(100), 0.0])
        assert np.isposinf(det.decision_scores_[-1])
        for method in ("linear", "unify"):
            proba = det.predict_proba(X, method=method)[:, 1]
            assert np.all(np.isfinite(proba)) and proba[-1] == 1.0 and proba[:-1].max() < 1.0 + 1e-12


# --------------------------------------------------------------------------- the default scorer
SMALL_ENSEMBLE = dict(n_estimators=2, max_samples=64, sample_passes=200, min_epochs=2,
                      max_epochs=5, hidden_layer_sizes=(8,), rbm_components=4, random_state=0,
                      device="cpu")


@parametrize_with_checks([LikelihoodOutlierDetector(_outlier._LikelihoodEnsemble(**SMALL_ENSEMBLE))])
def test_sklearn_compatible_default_scorer(estimator, check):
    """The recommended scorer, small, through every check (LikelihoodOutlierDetector() builds
    the same class at its recommended settings)."""
    check(estimator)


@pytest.fixture(scope="module")
def default_fitted():
    """LikelihoodOutlierDetector() as it comes, on 300 inliers in 6-D (a correlated Gaussian,
    one near-constant and one constant feature) and 15 outliers."""
    rng = np.random.RandomState(0)
    inliers = rng.randn(300, 4) @ rng.randn(4, 4)
    far = rng.uniform(4, 6, size=(15, 4)) * rng.choice([-1, 1], size=(15, 4))
    X = np.vstack([inliers, far])
    near_constant = np.where(rng.rand(315) < 0.97, 0.0, 1.0)
    X = np.column_stack([X, near_constant, np.full(315, 7.0)])
    y = np.r_[np.ones(300, dtype=int), -np.ones(15, dtype=int)]
    return LikelihoodOutlierDetector(random_state=0, device="cpu").fit(X), X, y


def test_default_detector_needs_no_arguments(default_fitted):
    det, X, y = default_fitted
    assert isinstance(det.estimator_, _outlier._LikelihoodEnsemble)
    assert det.estimator_.random_state == 0 and det.estimator_.device == "cpu"
    assert roc_auc_score(y, det.decision_function(X)) > 0.95
    pred = det.predict(X)
    assert np.mean(pred[y == -1] == -1) > 0.8
    # the 3% of inliers with the rare value of the near-constant feature are unusual in it;
    # among the others few are flagged
    common = (y == 1) & (X[:, 4] == 0)
    assert np.mean(pred[common] == -1) < 0.05
    # the constant feature is dropped, the near-constant one kept
    np.testing.assert_array_equal(det.estimator_.features_, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(det.decision_scores_, -det.score_samples(X))


def test_default_score_is_the_mean_of_normalised_member_log_likelihoods(default_fitted):
    """score_samples: each member's log-likelihood minus its training median over its training
    interquartile range, averaged; a typical training row scores about 0."""
    det, X, _ = default_fitted
    ens = det.estimator_
    Z = ens._scale(X)
    # n_estimators autoencoders weighing 1 in all, as many RBMs weighing rbm_weight
    assert len(ens.estimators_) == 2 * ens.n_estimators
    weights = np.array([w for w, *_ in ens.estimators_])
    total = 1 + ens.rbm_weight
    np.testing.assert_allclose(weights[:ens.n_estimators], 1 / total / ens.n_estimators)
    np.testing.assert_allclose(weights[ens.n_estimators:], ens.rbm_weight / total / ens.n_estimators)
    assert isinstance(ens.estimators_[0][1], AutoencoderTransformer)
    assert isinstance(ens.estimators_[-1][1][-1], sklearn_ae.BernoulliRBMStack)
    expected = 0.0
    for weight, model, code, median, spread in ens.estimators_:
        ll = ens._member_scores(model, code, Z)
        np.testing.assert_allclose(ll, model.score_samples(Z), rtol=1e-6)  # a log-likelihood
        q1, q3 = np.percentile(ll, [25, 75])
        assert median == pytest.approx(np.median(ll)) and spread == pytest.approx(q3 - q1)
        expected = expected + weight * (ll - median) / spread
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-6)
    assert abs(np.median(det.score_samples(X))) < 0.5


def test_default_detector_is_reproducible_and_seeded(default_fitted):
    det, X, _ = default_fitted
    again = clone(det).fit(X)
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    other = LikelihoodOutlierDetector(random_state=1, device="cpu").fit(X)
    assert not np.allclose(other.score_samples(X), det.score_samples(X))


def test_default_detector_trims_its_training_pool(rng):
    """The second round trains on subsamples of the rows the first round finds typical: with
    trim=0.5 and max_samples above the pool, every member of the last round, autoencoder or
    RBM, has seen exactly the better-scoring half of its own family's first round."""
    X = np.vstack([rng.randn(60, 3), 8 + rng.randn(6, 3)])
    seen = {"ae": [], "rbm": []}

    class Spy(_outlier._LikelihoodEnsemble):
        def _autoencoder(self, Z, random_state):
            seen["ae"].append(Z)
            return super()._autoencoder(Z, random_state)

        def _rbm(self, Z, random_state):
            seen["rbm"].append(Z)
            return super()._rbm(Z, random_state)

    ens = Spy(**{**SMALL_ENSEMBLE, "trim": 0.5, "max_samples": 1000}).fit(X)
    for family in ("ae", "rbm"):
        assert [len(Z) for Z in seen[family]] == [66, 66, 33, 33]
        # the planted far rows are among those set aside
        far = ens._scale(X[60:])
        assert not any((np.abs(Z[:, None, :] - far[None]).sum(-1) < 1e-9).any() for Z in seen[family][2:])
    assert len(ens.estimators_) == 4


def test_default_detector_input_checks(default_fitted):
    det, X, _ = default_fitted
    with pytest.raises(ValueError, match="6 features"):
        det.predict(X[:, :5])
    with pytest.raises(TypeError, match="[Ss]parse"):
        LikelihoodOutlierDetector(random_state=0).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="n_samples=1"):
        LikelihoodOutlierDetector(random_state=0).fit(X[:1])
    assert not get_tags(LikelihoodOutlierDetector()).input_tags.sparse
    assert LikelihoodOutlierDetector().get_metadata_routing().consumes("fit", ["sample_weight"]) == set()


def test_default_detector_on_constant_data_and_float32(rng):
    det = LikelihoodOutlierDetector(_outlier._LikelihoodEnsemble(**SMALL_ENSEMBLE))
    det.fit(np.ones((20, 3)))  # nothing varies: every row is typical
    assert np.all(det.predict(np.ones((4, 3))) == 1)
    X = rng.randn(50, 4).astype(np.float32)
    scores = det.fit(X).score_samples(X)
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))


def test_default_detector_pickles_and_keeps_feature_names(default_fitted):
    pd = pytest.importorskip("pandas")
    det, X, _ = default_fitted
    back = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(back.score_samples(X), det.score_samples(X))
    df = pd.DataFrame(X[:100], columns=[f"f{i}" for i in range(6)])
    named = LikelihoodOutlierDetector(_outlier._LikelihoodEnsemble(**SMALL_ENSEMBLE)).fit(df)
    assert list(named.feature_names_in_) == list(df.columns)


def test_code_density_adds_the_codes_gaussian_log_density(rng):
    X = rng.randn(80, 4) @ rng.randn(4, 4)
    ens = _outlier._LikelihoodEnsemble(**{**SMALL_ENSEMBLE, "code_density": True, "rbm_weight": 0,
                                          "n_rounds": 1, "max_samples": 1000})
    ens.fit(X)
    Z = ens._scale(X)
    _, model, code, _, _ = ens.estimators_[0]
    mean, precision, logdet = code
    codes = model.transform(Z).astype(np.float64)
    np.testing.assert_allclose(mean, codes.mean(0), rtol=1e-6)
    expected = model.score_samples(Z) + stats.multivariate_normal(
        mean, np.linalg.inv(precision)).logpdf(codes) + 0.5 * codes.shape[1] * np.log(2 * np.pi)
    np.testing.assert_allclose(ens._member_scores(model, code, Z), expected, rtol=1e-6)
    assert all(isinstance(m, AutoencoderTransformer) for _, m, *_ in ens.estimators_)


def test_default_form_passes_the_outlier_checks_at_its_own_settings():
    """The small ensemble goes through every check above; the default form itself, at the
    recommended settings, through scikit-learn's outlier-detector check (fit twice, predict,
    decision_function, score_samples, malformed input, contamination)."""
    check_outliers_train("LikelihoodOutlierDetector", LikelihoodOutlierDetector(random_state=0,
                                                                              device="cpu"))


def test_predict_proba_method_is_not_routed_metadata():
    """``method`` is PyOD's conversion choice: no ``set_predict_proba_request`` for it."""
    assert not hasattr(LikelihoodOutlierDetector(), "set_predict_proba_request")
