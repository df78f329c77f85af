"""Dask: every estimator on a real ``dask.distributed.LocalCluster`` (loopback only).

One cluster of two worker *processes* serves the whole module, so everything a worker gets
(models, partial fits, search candidates) really crosses a process boundary by pickling.
Estimators are taken from ``sklearn_ae.__all__``: one added there is tested here too.
"""

import asyncio
import inspect
import logging
import os
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils import check_random_state

import sklearn_ae
from sklearn_ae import LikelihoodOutlierDetector, dask_apply

# Small, fast, seeded settings; each estimator takes the ones it has.
SMALL = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, batch_size=50, random_state=0,
             device="cpu", n_importance_samples=4, n_ais_runs=4, n_ais_betas=50)

ESTIMATOR_CLASSES = [
    getattr(sklearn_ae, name) for name in sklearn_ae.__all__
    if inspect.isclass(getattr(sklearn_ae, name)) and hasattr(getattr(sklearn_ae, name), "partial_fit")
]


def make_small(cls, **extra):
    est = cls()
    params = est.get_params()
    return est.set_params(**{k: v for k, v in {**SMALL, **extra}.items() if k in params})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def X01():
    """400 digits scaled to [0, 1]: valid input for every model, Bernoulli ones included."""
    X, _ = load_digits(return_X_y=True)
    return X[:400] / 16.0


@pytest.fixture(scope="module")
def da():
    pytest.importorskip("dask_ml")
    return pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded worker processes on 127.0.0.1, closed at module end."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    try:
        client.run(lambda: __import__("sklearn_ae") and None)  # pay the imports once, in parallel
        yield client
    finally:
        client.close()
        # A worker that has imported torch takes seconds to exit on a busy machine; the default
        # close kills it after 4 s. Give the processes time to exit on their own.
        cluster.sync(_close_workers, cluster, 60)
        cluster.close()


async def _close_workers(cluster, timeout):
    await asyncio.gather(*(worker.close(timeout=timeout) for worker in cluster.workers.values()))


def _on_worker(model, method, X):
    """Runs on a worker: the method's result and the worker's process id."""
    return os.getpid(), getattr(model, method)(X)


# --------------------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_incremental_over_a_chunked_array_matches_local_partial_fits(cls, X01, da, client):
    """dask_ml.wrappers.Incremental feeds one chunk per partial_fit call, on the workers, in a
    shuffled block order; the result equals the same partial_fit calls made here, and
    Incremental's score is the estimator's score (mean log-likelihood)."""
    from dask_ml.wrappers import Incremental

    dX = da.from_array(X01, chunks=(100, X01.shape[1]))
    est = make_small(cls)
    inc = Incremental(est, random_state=0, shuffle_blocks=True).fit(dX)

    local = make_small(cls)
    order = list(range(dX.numblocks[0]))
    check_random_state(0).shuffle(order)  # dask-ml's block order for random_state=0
    for i in order:
        assert local.partial_fit(X01[i * 100:(i + 1) * 100]) is local
    assert inc.estimator_.n_iter_ == local.n_iter_ == 4
    np.testing.assert_allclose(inc.estimator_.transform(X01), local.transform(X01), rtol=1e-5, atol=1e-6)
    # dask-ml's ParallelPostFit.score requires y positionally, even for unsupervised models
    score = inc.score(dX, None)
    assert np.isfinite(score)
    assert score == pytest.approx(inc.estimator_.score(X01), rel=1e-6)


# --------------------------------------------------------------------------- searches
def test_grid_search_runs_its_fits_on_the_workers(X01, client):
    """GridSearchCV under joblib's dask backend: every (candidate, fold) fit runs in a worker
    process, and the search finds what a sequential search finds."""
    import joblib
    from distributed import get_task_stream

    est = make_small(sklearn_ae.AutoencoderTransformer)
    grid = {"n_components": [1, 3], "hidden_layer_sizes": [(4,), (8,)]}
    sequential = GridSearchCV(est, grid, cv=2).fit(X01)
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        distributed_search = GridSearchCV(est, grid, cv=2).fit(X01)
    # joblib's dask backend sends batches of fits as tasks named "..._fit_and_score_<n>_calls-..."
    fits = [(task["worker"], int(m.group(1))) for task in stream.data
            if (m := re.search(r"_fit_and_score_(\d+)_calls", str(task["key"])))]
    assert sum(n for _, n in fits) == 4 * 2  # every (candidate, fold) fit ran on the cluster
    assert {w for w, _ in fits} <= set(client.scheduler_info()["workers"])
    np.testing.assert_allclose(distributed_search.cv_results_["mean_test_score"],
                               sequential.cv_results_["mean_test_score"], rtol=1e-5)
    assert distributed_search.best_params_ == sequential.best_params_


# --------------------------------------------------------------------------- inference
@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_dask_apply_transform_and_score_samples_on_the_cluster(cls, X01, da, client):
    model = make_small(cls).fit(X01)
    dX = da.from_array(X01.astype(np.float32), chunks=(90, 64))
    blocks = [X01[i:i + 90].astype(np.float32) for i in range(0, 400, 90)]
    for method in ("transform", "score_samples"):
        lazy = dask_apply(model, dX, method)
        assert isinstance(lazy, da.Array) and lazy.numblocks[0] == 5
        out = lazy.compute()
        expected = np.concatenate([getattr(model, method)(b) for b in blocks])
        assert out.shape == lazy.shape == expected.shape and out.dtype == lazy.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    codes = dask_apply(model, dX, "transform")
    X_back = dask_apply(model, codes, "inverse_transform")
    assert X_back.shape == X01.shape
    np.testing.assert_allclose(X_back.compute(), model.inverse_transform(codes.compute()), rtol=1e-5, atol=1e-5)


def test_dask_apply_is_lazy_and_processes_chunk_by_chunk(X01, da):
    """Building the graph costs one probe row; computing it sees each chunk once, never all rows."""

    class Spy(PCA):
        def score_samples(self, X):
            self.calls.append(len(X))
            return super().score_samples(X)

    spy = Spy(n_components=3).fit(X01)
    spy.calls = []
    lazy = dask_apply(spy, da.from_array(X01, chunks=(150, 64)), "score_samples")
    assert spy.calls == [1]  # the probe, on one row of zeros
    out = lazy.compute(scheduler="synchronous")
    assert sorted(spy.calls[1:]) == [100, 150, 150]
    np.testing.assert_allclose(out, PCA(n_components=3).fit(X01).score_samples(X01))


def test_dask_apply_puts_the_model_in_the_graph_once(X01, da):
    model = PCA(n_components=3).fit(X01)
    graph = dict(dask_apply(model, da.from_array(X01, chunks=(50, 64)), "transform").__dask_graph__())
    holders = [k for k, v in graph.items() if getattr(v, "value", None) is model]
    assert len(holders) == 1 and len(graph) == 2 * 8 + 1


def test_dask_apply_outlier_detector_and_edge_cases(X01, da):
    det = LikelihoodOutlierDetector(PCA(n_components=3), contamination=0.1).fit(X01)
    dX = da.from_array(X01, chunks=((100, 0, 150, 150), (32, 32)))  # an empty chunk, split columns
    np.testing.assert_array_equal(dask_apply(det, dX, "predict").compute(), det.predict(X01))
    np.testing.assert_allclose(dask_apply(det, dX, "decision_function").compute(),
                               det.decision_function(X01))
    with pytest.raises(TypeError, match="dask.array"):
        dask_apply(det, X01, "predict")
    with pytest.raises(ValueError, match="method must be one of"):
        dask_apply(det, dX, "fit")
    with pytest.raises(AttributeError, match="transform"):
        dask_apply(det, dX, "transform")


# --------------------------------------------------------------------------- shipping models
@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_fitted_model_shipped_to_a_worker_gives_the_same_results(cls, X01, client):
    model = make_small(cls).fit(X01)
    for method in ("transform", "score_samples"):
        pid, remote = client.submit(_on_worker, model, method, X01, pure=False).result()
        assert pid != os.getpid()  # computed in another process, from a pickled copy
        np.testing.assert_allclose(remote, getattr(model, method)(X01), rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*(CUDA|cuda).*")  # skorch's DeviceWarning, expected here
def test_model_marked_as_trained_on_cuda_loads_on_a_cpu_worker(X01, client):
    """Simulation (no GPU in this test run): the skorch net of a GPU-trained model records
    device='cuda'; a CPU-only worker unpickles it on the CPU and gets the same numbers. The
    weights themselves were never on a GPU here."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this simulation is for CPU-only machines")
    model = make_small(sklearn_ae.AutoencoderTransformer).fit(X01)
    expected = model.score_samples(X01)
    gpu_like = pickle.loads(pickle.dumps(model))
    gpu_like.net_.device = "cuda"

    def remote(m, X):
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            return m.net_.device, m.score_samples(X)

    device, scores = client.submit(remote, gpu_like, X01, pure=False).result()
    assert str(device) == "cpu"
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


# --------------------------------------------------------------------------- without dask
def test_everything_else_works_without_dask_and_the_helper_says_what_to_install():
    code = (
        "import sys\n"
        "for name in ('dask', 'dask.array', 'distributed', 'dask_ml'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "import numpy as np, sklearn_ae\n"
        "X = np.random.RandomState(0).rand(40, 5)\n"
        "ae = sklearn_ae.AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), max_iter=2,\n"
        "                                      device='cpu', random_state=0).fit(X)\n"
        "assert ae.transform(X).shape == (40, 2)\n"
        "try:\n"
        "    sklearn_ae.dask_apply(ae, X)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install sklearn-ae[dask]" in result.stdout
