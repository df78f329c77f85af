"""device="accelerate": data parallelism through skorch's Accelerate integration.

The distributed test launches two real CPU processes (``torch.distributed.run``, gloo backend)
and checks them against one ordinary process trained on the doubled batch.
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_ae import AutoencoderTransformer

ROOT = Path(__file__).resolve().parents[1]
BATCH = 25  # rows per process and step; 400 rows = 8 global batches of 50, evenly split
PARAMS = {"n_components": 3, "hidden_layer_sizes": (16,), "likelihood": "bernoulli",
          "learning_rate_init": 1e-2, "max_iter": 3, "tol": 0.0, "random_state": 0}

WORKER = textwrap.dedent("""
    import json, pickle, sys, warnings
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn_ae import AutoencoderTransformer
    warnings.simplefilter("ignore")
    out, params, batch = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    X = load_digits().data[:400] / 16
    ae = AutoencoderTransformer(batch_size=batch, device="accelerate", **params).fit(X)
    rank = ae.net_.accelerator.process_index
    np.save(f"{out}/fit_{rank}.npy", weights := np.concatenate(
        [p.detach().numpy().ravel() for p in ae.module_.parameters()]))
    if rank == 0:
        with open(f"{out}/model.pkl", "wb") as f:
            pickle.dump(ae, f)
    record = dict(num_processes=ae.net_.accelerator.num_processes, loss_curve=ae.loss_curve_,
                  score=ae.score(X))
    try:  # without a seed, the processes would shuffle differently
        AutoencoderTransformer(n_components=2, max_iter=1, device="accelerate").fit(X[:50])
        record["seedless"] = "fitted"
    except ValueError as exc:
        record["seedless"] = str(exc)
    ae.partial_fit(X)  # a second training in the same processes: the modules are wrapped again
    np.save(f"{out}/partial_{rank}.npy",
            np.concatenate([p.detach().numpy().ravel() for p in ae.module_.parameters()]))
    with open(f"{out}/record_{rank}.json", "w") as f:
        json.dump(record, f)
""")


def _weights(est):
    return np.concatenate([p.detach().numpy().ravel() for p in est.module_.parameters()])


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_without_accelerate_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate now fails
    X = np.random.RandomState(0).rand(40, 4)
    AutoencoderTransformer(n_components=2, max_iter=2, device="cpu").fit(X)  # unaffected
    with pytest.raises(ImportError, match="pip install accelerate"):
        AutoencoderTransformer(n_components=2, max_iter=2, device="accelerate").fit(X)


def test_switching_to_or_from_accelerate_needs_a_fresh_fit():
    pytest.importorskip("accelerate")
    X = np.random.RandomState(0).rand(40, 4)
    ae = AutoencoderTransformer(n_components=2, max_iter=2, device="cpu", random_state=0).fit(X)
    with pytest.raises(ValueError, match="fit afresh"):
        ae.set_params(device="accelerate").partial_fit(X)
    ae.fit(X)  # a fresh fit switches
    with pytest.raises(ValueError, match="fit afresh"):
        ae.set_params(device="cpu").partial_fit(X)


def test_two_cpu_processes_match_one_process_with_the_doubled_batch(tmp_path):
    pytest.importorskip("accelerate")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tmp_path), json.dumps(PARAMS), str(BATCH)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    records = [json.loads((tmp_path / f"record_{r}.json").read_text()) for r in (0, 1)]
    assert [r["num_processes"] for r in records] == [2, 2]
    fit = [np.load(tmp_path / f"fit_{r}.npy") for r in (0, 1)]
    partial = [np.load(tmp_path / f"partial_{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(fit[0], fit[1])  # gradients are averaged: no drift at all
    np.testing.assert_array_equal(partial[0], partial[1])
    assert records[0]["loss_curve"] == records[1]["loss_curve"]  # averaged over processes
    assert all("int random_state" in r["seedless"] for r in records)

    X = load_digits().data[:400] / 16
    single = AutoencoderTransformer(batch_size=2 * BATCH, device="cpu", **PARAMS).fit(X)
    np.testing.assert_allclose(fit[0], _weights(single), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(records[0]["loss_curve"], single.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(records[0]["score"], single.score(X), rtol=1e-4)

    # the pickle loads and scores in this plain process
    with open(tmp_path / "model.pkl", "rb") as f:
        loaded = pickle.load(f)
    np.testing.assert_allclose(loaded.score(X), records[0]["score"], rtol=1e-6)
    np.testing.assert_allclose(loaded.transform(X), single.transform(X), rtol=1e-3, atol=1e-4)

    # ... and trains on in it, as one process: the same step as the two processes took
    loaded.set_params(batch_size=2 * BATCH).partial_fit(X)
    single.partial_fit(X)
    np.testing.assert_allclose(_weights(loaded), partial[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_weights(loaded), _weights(single), rtol=1e-4, atol=1e-5)
