"""Shared helpers of the benchmark scripts: the machine and library versions, timing with device
synchronisation, peak-memory probes, data loaders, and the record format written to results/.

Every measurement is one dict (see :func:`record`) with at least ``suite``, ``case``,
``implementation``, ``metric``, ``value``, ``device``, ``machine`` and ``versions``; ``reference``
holds a published figure where one applies.
"""

import contextlib
import gzip
import importlib
import json
import os
import platform
import statistics
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("SKLEARN_AE_DATA", ROOT / ".." / "shared" / "data")).resolve()

#: the public estimators the suites look for; those not (yet) in the package are skipped
OUR_ESTIMATORS = ("AutoencoderTransformer", "SparseAutoencoder", "BernoulliRBMStack", "VAETransformer")


# --------------------------------------------------------------------------- environment
def ours():
    """``{name: class}`` for each of our estimators that the installed package has."""
    import sklearn_ae

    return {name: getattr(sklearn_ae, name) for name in OUR_ESTIMATORS if hasattr(sklearn_ae, name)}


def optional(module):
    """Import ``module`` or return None (anchors are optional: a missing one is skipped)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device):
    """A short description of where the numbers come from (GPU name on CUDA, else the CPU)."""
    cores = os.cpu_count()
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(torch.device(device))} (host: {cpu_model()}, {cores} cores)"
    return f"{cpu_model()} ({cores} cores)"


def versions():
    out = {"python": platform.python_version()}
    for name, module in [("torch", "torch"), ("sklearn", "sklearn"), ("skorch", "skorch"),
                         ("pyod", "pyod"), ("numpy", "numpy"), ("sklearn_ae", "sklearn_ae")]:
        mod = optional(module)
        out[name] = getattr(mod, "__version__", None) if mod is not None else None
    if torch.cuda.is_available():
        out["cuda"] = torch.version.cuda
    return out


GRAPH_SWITCH = "SKLEARN_AE_CUDA_GRAPHS"  # sklearn_ae._graphs.ENVIRONMENT_SWITCH


def cuda_graphs_enabled():
    """Whether our estimators may train through CUDA graphs in this process (the switch)."""
    return os.environ.get(GRAPH_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


@contextlib.contextmanager
def eager_training():
    """Our estimators with CUDA-graph training switched off, for comparison; the switch is put
    back as it was."""
    saved = os.environ.get(GRAPH_SWITCH)
    os.environ[GRAPH_SWITCH] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[GRAPH_SWITCH]
        else:
            os.environ[GRAPH_SWITCH] = saved


def context(device):
    """What every record carries: device, machine, versions, torch threads, load, time."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "device": str(device),
        "machine": machine(device),
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": None if load is None else round(load, 2),
        "cuda_graphs": cuda_graphs_enabled(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def set_threads(n):
    """Set torch's intra-op threads for the whole run (None keeps torch's default). On a machine
    shared with other jobs, one thread avoids OpenMP stalls that have nothing to do with the
    libraries measured; every record carries the setting as ``torch_threads``."""
    if n is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(n)
        global _BLAS_LIMIT  # NumPy's BLAS (scikit-learn's anchors) gets the same limit
        _BLAS_LIMIT = threadpool_limits(limits=n)


_BLAS_LIMIT = None


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device} was asked for but CUDA is not available here.")
    return device


# ------------------------------------------------------------------------------ records
def record(ctx, suite, case, implementation, metric, value, *, reference=None, **extra):
    """One measurement as a JSON-ready dict."""
    out = {"suite": suite, "case": case, "implementation": implementation, "metric": metric,
           "value": None if value is None else float(value)}
    if reference is not None:
        out["reference"] = reference
    out.update(extra)
    out.update({k: v for k, v in ctx.items() if k not in out})
    return out


def write_results(records, name, markdown):
    """Write ``results/<name>.json`` (the records) and ``results/<name>.md`` (``markdown``)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(records, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    return path


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fmt(value, digits=3):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def header_lines(ctx, title, command):
    v = ctx["versions"]
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
    return (f"# {title}\n\nMeasured {ctx['timestamp']} on {ctx['machine']}, device `{ctx['device']}`, "
            f"torch threads {ctx['torch_threads']}, 1-min load average at start "
            f"{ctx['load_average_1min']}.\n\nLibraries: {libs}.\n\nCommand: `{command}`\n\n")


# ------------------------------------------------------------------------------- timing
def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(torch.device(device))


def timed(fn, device):
    """Wall time of ``fn()`` in seconds, with the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def median(values):
    return statistics.median(values) if values else None


class PeakMemory:
    """Peak memory of a block: host anonymous RSS above the level at entry (polled from
    ``/proc/self/status``; file-backed pages such as a memory-mapped input are not counted),
    NumPy/Python allocations (``tracemalloc``) and, on CUDA, ``torch.cuda.max_memory_allocated``.
    """

    def __init__(self, device, interval=0.002):
        self.device = torch.device(device)
        self.interval = interval

    @staticmethod
    def _anon_rss():
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def _poll(self):
        while not self._stop.is_set():
            value = self._anon_rss()
            if value is not None:
                self._peak = max(self._peak, value)
            time.sleep(self.interval)

    def __enter__(self):
        import gc
        import tracemalloc

        gc.collect()
        self._tracemalloc = tracemalloc
        self.base_rss = self._anon_rss()
        self._peak = self.base_rss or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base_cuda = torch.cuda.memory_allocated(self.device)
        tracemalloc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_cuda = torch.cuda.max_memory_allocated(self.device) - self.base_cuda
        else:
            self.peak_cuda = None
        self._stop.set()
        self._thread.join()
        final = self._anon_rss()
        if final is not None:
            self._peak = max(self._peak, final)
        _, self.peak_traced = self._tracemalloc.get_traced_memory()
        self._tracemalloc.stop()
        self.peak_rss = None if self.base_rss is None else self._peak - self.base_rss
        return False


# --------------------------------------------------------------------------------- data
def require_data(*parts):
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise SystemExit(
            f"{path} not found: the benchmarks read the project's shared data from ../shared/data "
            "(or the folder named by SKLEARN_AE_DATA).")
    return path


def binarized_mnist():
    """Statically binarized MNIST: dict of float32 0/1 arrays ``train`` (50k), ``valid``, ``test``."""
    with np.load(require_data("mnist", "binarized_mnist_static.npz")) as f:
        return {k: f[k].astype(np.float32) for k in ("train", "valid", "test")}


def grey_mnist_test():
    """The real MNIST test images, grey levels scaled to [0, 1] (float32, 10000 x 784)."""
    raw = gzip.open(require_data("mnist", "t10k-images-idx3-ubyte.gz")).read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
