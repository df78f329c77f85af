"""Does CUDA-graph training work on this GPU? A few seconds' check before the measured parts.

Fits each estimator briefly on the device twice, with the training step captured in a CUDA graph
and eagerly (``SKLEARN_AE_CUDA_GRAPHS=0``), and records for each: whether the graph fit ran, how
many captures and replays it made, the largest relative difference of the loss curves, and the
time of each fit. The graph passes when it ran, captured, replayed and its loss curve agrees with
the eager one within ``TOLERANCE``. Exit status 0 when every estimator passes, 3 otherwise, so
that ``gpu_run.sh`` can measure the rest eagerly rather than lose the run.

    python benchmarks/cuda_graph_probe.py --device cuda
"""

import argparse
import sys
import time
import traceback
import warnings

import numpy as np

import _common as C

SUITE = "cuda_graph_probe"
#: largest relative difference of the graph's and the eager loss curves that passes (float32
#: rounding, summed in another order, over 3 epochs)
TOLERANCE = 1e-3


def models(found, device):
    common = dict(max_iter=3, tol=0.0, random_state=0, device=device, batch_size=64)
    return {
        "AutoencoderTransformer": lambda: found["AutoencoderTransformer"](
            n_components=8, hidden_layer_sizes=(64,), **common),
        "SparseAutoencoder": lambda: found["SparseAutoencoder"](n_components=32, **common),
        "VAETransformer": lambda: found["VAETransformer"](
            n_components=4, hidden_layer_sizes=(64,), n_importance_samples=10, **common),
        "BernoulliRBMStack": lambda: found["BernoulliRBMStack"](
            n_components=32, persistent=True, n_ais_runs=8, n_ais_betas=50, **common),
    }


def run(args):
    from sklearn.exceptions import ConvergenceWarning

    from sklearn_ae import _graphs

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 3 epochs, on purpose

    device = C.resolve_device(args.device)
    ctx = C.context(device)
    found = C.ours()
    rng = np.random.RandomState(0)
    X = rng.rand(1000, 64).astype(np.float32)
    counts = []
    original = _graphs.GraphedStep.close

    def close(self):
        counts.append((self.captures, self.replays))
        original(self)

    _graphs.GraphedStep.close = close
    try:
        return probe(ctx, device, found, X, counts, args.name or f"cuda_graph_probe_{device.replace(':', '')}")
    finally:
        _graphs.GraphedStep.close = original


def probe(ctx, device, found, X, counts, results_name):
    import torch

    records, rows, ok = [], [], True
    for name, make in models(found, device).items():
        data = (X > 0.5).astype(np.float32) if name == "BernoulliRBMStack" else X
        counts.clear()
        start = time.perf_counter()
        try:
            graphed = make().fit(data)
            graph_s, error = time.perf_counter() - start, None
        except Exception as exc:  # noqa: BLE001 - recorded, and the run goes on eagerly
            graphed, graph_s, error = None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        captures, replays = counts[0] if counts else (0, 0)
        with C.eager_training():
            start = time.perf_counter()
            eager = make().fit(data)
            eager_s = time.perf_counter() - start
        diff = None
        if graphed is not None:
            a, b = np.asarray(graphed.loss_curve_), np.asarray(eager.loss_curve_)
            diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
        works = error is None and captures > 0 and replays > 0 and diff is not None and diff <= TOLERANCE
        ok = ok and works
        records.append(C.record(ctx, SUITE, "1000x64, 3 epochs, batch 64", name, "graph_training_works", works,
                                error=error, captures=captures, replays=replays, loss_curve_max_rel_diff=diff,
                                graph_fit_s=graph_s, eager_fit_s=eager_s, torch=torch.__version__))
        rows.append([name, works, captures, replays, "—" if diff is None else f"{diff:.2e}", f"{graph_s:.2f}",
                     f"{eager_s:.2f}", error or ""])
        print(f"{name}: works={works} captures={captures} replays={replays} max rel diff={diff} "
              f"graph {graph_s:.2f}s eager {eager_s:.2f}s {error or ''}", flush=True)
    text = C.header_lines(ctx, "CUDA-graph training probe", " ".join(sys.argv))
    text += C.md_table(["estimator", "graph fit ran", "captures", "replays", "loss curve max rel diff",
                        "graph fit s", "eager fit s", "error"], rows)
    C.write_results(records, results_name, text)
    return 0 if ok else 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--name", default=None)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
