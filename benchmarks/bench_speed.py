"""How fast do our estimators train and infer, next to what users already have?

Training throughput (samples per second over a fit of a fixed number of epochs, median of
repeats) and inference throughput of each of our estimators and of the anchors that do the same
job, on the same data, with the same architecture, batch size and epochs, in one process:

- a small tabular case: 10,000 x 64 (seeded low-rank data plus noise), one hidden layer of 32
  (64-32 and its mirror; RBM 64 -> 32 on the data scaled to [0, 1]);
- an MNIST-sized case: the 60,000 binarized MNIST images (train + valid), encoder
  784-1000-500-250-30 and its mirror; RBM 784 -> 500;

at batch sizes 128 and 1024. Anchors: skorch's ``NeuralNet`` as it comes (its default DataLoader
path), PyOD's ``AutoEncoder`` (batch norm and dropout off so the network matches), scikit-learn's
``MLPRegressor`` fitted X -> X, ``BernoulliRBM`` and ``PCA``, and a bare PyTorch loop over
device-resident tensors (the floor any wrapper adds its overhead to).

On the CPU, a fit over all 60,000 MNIST rows would take minutes per implementation, so the
MNIST-sized case times a fit over the first ``rows`` rows (recorded in every measurement as
``rows_timed``; at least ``min_batches`` batches); on CUDA it uses all of them.

Two targets on the CPU, fit wall time on scikit-learn's digits (1797 x 64): our
``AutoencoderTransformer`` against ``MLPRegressor(X -> X)`` of the same architecture (64-128-64-8
and mirror, tanh, Adam, batch 200) and epochs, and a single-layer ``BernoulliRBMStack`` against
``BernoulliRBM`` with the latter's defaults (256 hidden units, batch 10, learning rate 0.1).

Peak memory: ``transform`` and ``score_samples`` of an ``AutoencoderTransformer`` (784-32) on a
memory-mapped 1,000,000 x 784 float32 array, against the same on 100,000 rows: if inference is
batched, the peak beyond the output array does not grow with the number of rows.

Repeats run round-robin over the implementations so that a change in the machine's load hits all
of them alike. Every call is synchronised on CUDA before and after.
"""

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import _common as C

SUITE = "speed"


# ------------------------------------------------------------------------------- helpers
def make(cls, **params):
    """``cls(**params)`` keeping only the parameters ``cls`` has (the estimators differ a little)."""
    names = set(inspect.signature(cls.__init__).parameters)
    return cls(**{k: v for k, v in params.items() if k in names})


def mirror_mlp(sizes, activation=nn.ReLU):
    """The plain torch autoencoder an anchor trains: ``sizes`` down, mirrored back, linear code
    and linear output."""
    down = list(sizes)
    up = down[::-1]
    layers = []
    for path in (down, up):
        for i, (a, b) in enumerate(zip(path[:-1], path[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(path) - 2:
                layers.append(activation())
    return nn.Sequential(*layers)


class _Reconstruct(nn.Module):
    """skorch anchor's module: returns the reconstruction (criterion MSELoss against X)."""

    def __init__(self, sizes):
        super().__init__()
        self.net = mirror_mlp(sizes)

    def forward(self, X):
        return self.net(X)


def bare_torch_fit(X, sizes, batch_size, epochs, device, seed):
    """The floor: Adam on MSE, minibatches sliced from a device tensor, seeded shuffling.

    On the CPU it uses the thread count our engine picks for the same step (one intra-op thread
    below 50 M multiply-adds per batch), so that the gap to ours is the wrapper's overhead.
    """
    flops = batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * 2
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu" and flops < 50_000_000:
        torch.set_num_threads(1)
    try:
        return _bare_torch_fit(X, sizes, batch_size, epochs, device, seed)
    finally:
        torch.set_num_threads(threads)


def _bare_torch_fit(X, sizes, batch_size, epochs, device, seed):
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    module = mirror_mlp(sizes).to(device)
    torch.random.set_rng_state(torch_state)  # the init above drew from the global RNG; put it back
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    Xt = torch.from_numpy(np.ascontiguousarray(X)).to(device)
    n = len(Xt)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, batch_size):
            xb = Xt[order[start:start + batch_size]]
            loss = ((module(xb) - xb) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    float(loss)  # one sync, as a user reading the loss would
    return module


def digits_autoencoder_fits(epochs, seed, found=None):
    """The CPU target's pair on digits, name -> ``fit(X)``: our ``AutoencoderTransformer`` (when
    ``found``, the classes sklearn_ae has, includes it) and ``MLPRegressor(X -> X)``, the same
    network (64-128-64-8 tanh and mirror), Adam, batch 200, ``epochs`` epochs, no early stop."""
    from sklearn.neural_network import MLPRegressor

    found = C.ours() if found is None else found
    fits = {}
    if "AutoencoderTransformer" in found:
        cls = found["AutoencoderTransformer"]

        def ours(X):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning after the fixed epochs
                return cls(n_components=8, hidden_layer_sizes=(128, 64), activation="tanh", batch_size=200,
                           max_iter=epochs, tol=0.0, n_iter_no_change=10 ** 6, random_state=seed,
                           device="cpu").fit(X)
        fits["AutoencoderTransformer"] = ours

    def mlp(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MLPRegressor(hidden_layer_sizes=(128, 64, 8, 64, 128), activation="tanh", solver="adam",
                                batch_size=200, max_iter=epochs, tol=0.0, n_iter_no_change=10 ** 6,
                                random_state=seed).fit(X, X)
    fits["sklearn MLPRegressor"] = mlp
    return fits


# ------------------------------------------------------------------ implementations per case
class Impl:
    """One implementation in a case: ``fit(X)`` returns the fitted object; ``infer`` maps a method
    name to ``fn(fitted, X)``; ``infer_rows`` optionally caps the rows of one inference method;
    ``epochs`` overrides the case's number of epochs (a row that amortises a fit's set-up)."""

    def __init__(self, name, fit, infer=None, device=None, note=None, infer_rows=None, epochs=None):
        self.name, self.fit, self.infer = name, fit, infer or {}
        self.device, self.note, self.infer_rows = device, note, infer_rows or {}
        self.epochs = epochs


#: epochs of the CUDA rows that amortise a fit's set-up (copy to the device, validation, the
#: noise or statistics pass) over several epochs, at the large batch size only
STEADY_EPOCHS = 10


def cuda_variants(name, fit, device, batch_size):
    """On CUDA, our estimator also with its training step eager (no CUDA graph) and with
    TensorFloat-32 matrix products, to show what each contributes; at batch 1024 and above also
    over ``STEADY_EPOCHS`` epochs (the training rate once the fit's set-up is amortised)."""
    def eager(X):
        with C.eager_training():
            return fit(X)
    step = "CUDA graph" if C.cuda_graphs_enabled() else "eager step (CUDA graphs switched off for this run)"
    out = [Impl(f"{name} (eager step)", eager, None, device, f"{C.GRAPH_SWITCH}=0"),
           Impl(f"{name} precision=tf32", lambda X: fit(X, precision="tf32"), None, device,
                f"{step}, TensorFloat-32 matrix products")]
    if batch_size >= 1024:
        out.append(Impl(f"{name} ({STEADY_EPOCHS} epochs)", lambda X: fit(X, max_iter=STEADY_EPOCHS), None,
                        device, "the same fit over more epochs", epochs=STEADY_EPOCHS))
    return out


def ae_impls(sizes, batch_size, epochs, device, seed, activation="relu"):
    """Our autoencoder-family estimators and the anchors, all on the encoder ``sizes``."""
    n_features, *hidden, code = sizes
    found = C.ours()
    common = dict(n_components=code, hidden_layer_sizes=tuple(hidden), activation=activation,
                  batch_size=batch_size, max_iter=epochs, tol=0.0, n_iter_no_change=10 ** 6,
                  shuffle=True, random_state=seed, device=device, learning_rate_init=1e-3)
    impls = []
    for name in ("AutoencoderTransformer", "SparseAutoencoder", "VAETransformer"):
        if name not in found:
            continue
        cls = found[name]
        infer = {"transform": lambda m, X: m.transform(X),
                 "score_samples": lambda m, X: m.score_samples(X)}
        rows = {}
        note = None
        if name == "VAETransformer":
            k = make(cls).get_params().get("n_importance_samples")
            note = f"score_samples: IWAE with the default K={k}"
            rows = {"score_samples": 64 if n_features < 256 else 16}
        if name == "SparseAutoencoder":
            note = "sigmoid code, KL sparsity penalty (defaults)"
        impls.append(Impl(name, lambda X, cls=cls: make(cls, **common).fit(X), infer, device, note,
                          rows))
        if name == "AutoencoderTransformer" and str(device).startswith("cuda"):
            impls += cuda_variants(name, lambda X, cls=cls, **kw: make(cls, **{**common, **kw}).fit(X), device,
                                   batch_size)

    skorch = C.optional("skorch")
    if skorch is not None:
        def fit_skorch(X):
            torch_state = torch.random.get_rng_state()
            torch.manual_seed(seed)  # skorch initialises the module from the global RNG
            net = skorch.NeuralNet(_Reconstruct, module__sizes=sizes, criterion=nn.MSELoss,
                                   optimizer=torch.optim.Adam, lr=1e-3, batch_size=batch_size,
                                   max_epochs=epochs, train_split=None, iterator_train__shuffle=True,
                                   device=device, verbose=0)
            net.fit(X, X)
            torch.random.set_rng_state(torch_state)
            return net
        impls.append(Impl("skorch NeuralNet", fit_skorch,
                          {"predict": lambda m, X: m.predict(X)}, device,
                          "defaults: DataLoader over a per-row Dataset, MSELoss, Adam"))

    ae_mod = C.optional("pyod.models.auto_encoder")
    if ae_mod is not None:
        def fit_pyod(X):
            clf = ae_mod.AutoEncoder(hidden_neuron_list=[*hidden, code], batch_norm=False,
                                     dropout_rate=0.0, epoch_num=epochs, batch_size=batch_size,
                                     lr=1e-3, preprocessing=False, device=device,
                                     random_state=seed, verbose=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return clf.fit(X)
        impls.append(Impl("pyod AutoEncoder", fit_pyod,
                          {"decision_function": lambda m, X: m.decision_function(X)}, device,
                          "batch_norm=False, dropout_rate=0 to match; fit also scores the training set"))

    from sklearn.neural_network import MLPRegressor

    def fit_mlp(X):
        mlp = MLPRegressor(hidden_layer_sizes=(*hidden, code, *reversed(hidden)),
                           activation=activation, solver="adam", batch_size=batch_size,
                           learning_rate_init=1e-3, max_iter=epochs, tol=0.0,
                           n_iter_no_change=10 ** 6, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlp.fit(X, X)
    impls.append(Impl("sklearn MLPRegressor", fit_mlp, {"predict": lambda m, X: m.predict(X)},
                      "cpu", "fitted X -> X; NumPy on the CPU whatever --device says"))

    from sklearn.decomposition import PCA
    impls.append(Impl("sklearn PCA", lambda X: PCA(n_components=code, random_state=seed).fit(X),
                      {"transform": lambda m, X: m.transform(X),
                       "score_samples": lambda m, X: m.score_samples(X)},
                      "cpu", "closed form (no epochs): the linear reference"))

    impls.append(Impl("bare PyTorch loop", lambda X: bare_torch_fit(X, sizes, batch_size, epochs,
                                                                     device, seed),
                      None, device, "Adam on MSE over device-resident tensors; no wrapper"))
    if str(device).startswith("cuda") and batch_size >= 1024:
        impls.append(Impl(f"bare PyTorch loop ({STEADY_EPOCHS} epochs)",
                          lambda X: bare_torch_fit(X, sizes, batch_size, STEADY_EPOCHS, device, seed), None, device,
                          "the same loop over more epochs", epochs=STEADY_EPOCHS))
    return impls


def rbm_impls(n_visible, n_hidden, batch_size, epochs, device, seed, learning_rate=0.1):
    impls = []
    found = C.ours()
    if "BernoulliRBMStack" in found:
        cls = found["BernoulliRBMStack"]
        params = dict(n_components=n_hidden, hidden_layer_sizes=(), batch_size=batch_size,
                      learning_rate=learning_rate, max_iter=epochs, tol=0.0,
                      n_iter_no_change=10 ** 6, random_state=seed, device=device, n_gibbs_steps=1,
                      persistent=False)
        impls.append(Impl("BernoulliRBMStack", lambda X: make(cls, **params).fit(X),
                          {"transform": lambda m, X: m.transform(X),
                           "pseudo_likelihood": lambda m, X: m.pseudo_likelihood(X)},
                          device, "CD-1, one layer"))
        if str(device).startswith("cuda"):
            impls += cuda_variants("BernoulliRBMStack", lambda X, **kw: make(cls, **{**params, **kw}).fit(X),
                                   device, batch_size)
    from sklearn.neural_network import BernoulliRBM
    impls.append(Impl("sklearn BernoulliRBM",
                      lambda X: BernoulliRBM(n_components=n_hidden, batch_size=batch_size,
                                             learning_rate=learning_rate, n_iter=epochs,
                                             random_state=seed).fit(X),
                      {"transform": lambda m, X: m.transform(X),
                       "pseudo_likelihood": lambda m, X: m.score_samples(X)},
                      "cpu", "PCD-1 (its only algorithm), NumPy on the CPU"))
    return impls


# ------------------------------------------------------------------------------ measuring
def measure(ctx, case, impls, X_fit, X_infer, epochs, repeats, extra, cpu_rows=None):
    """Round-robin ``repeats`` timed fits of every implementation, then inference timings.

    ``cpu_rows``: in a GPU run, the CPU anchors (scikit-learn) fit and infer on the first
    ``cpu_rows`` rows only (a rate needs enough batches, not every row); each record says how many.
    """
    out = []

    def rows_for(impl, X):
        on_cpu_beside_gpu = impl.device == "cpu" and ctx["device"] != "cpu"
        return X[:cpu_rows] if cpu_rows and on_cpu_beside_gpu else X

    warm = X_fit[:min(len(X_fit), 2 * max(128, extra.get("batch_size", 128)))]
    for impl in impls:  # warm-up: lazy initialisation, first-call costs
        impl.fit(warm)
    times = {impl.name: [] for impl in impls}
    fitted = {}
    for _ in range(repeats):
        for impl in impls:
            seconds, model = C.timed(lambda: impl.fit(rows_for(impl, X_fit)), impl.device or ctx["device"])
            times[impl.name].append(seconds)
            fitted[impl.name] = model
    for impl in impls:
        dev = impl.device or ctx["device"]
        t = C.median(times[impl.name])
        ep = impl.epochs or (1 if impl.name == "sklearn PCA" else epochs)
        n_fit = len(rows_for(impl, X_fit))
        common = dict(rows_timed=n_fit, epochs=ep, repeats=repeats,
                      seconds=times[impl.name], note=impl.note, **extra)
        out.append(C.record({**ctx, "device": dev, "machine": C.machine(dev)}, SUITE, case, impl.name, "train_samples_per_s",
                            n_fit * ep / t, **common))
        out.append(C.record({**ctx, "device": dev, "machine": C.machine(dev)}, SUITE, case, impl.name, "fit_seconds", t,
                            **common))
        for method, fn in impl.infer.items():
            Xi = rows_for(impl, X_infer)[:impl.infer_rows.get(method, len(X_infer))]
            secs = []
            for _ in range(repeats):
                s, _ = C.timed(lambda: fn(fitted[impl.name], Xi), dev)
                secs.append(s)
            out.append(C.record({**ctx, "device": dev, "machine": C.machine(dev)}, SUITE, case, impl.name,
                                "inference_samples_per_s", len(Xi) / C.median(secs), method=method,
                                rows_timed=len(Xi), repeats=repeats, seconds=secs, note=impl.note,
                                **extra))
    for r in out:
        if r["metric"] == "train_samples_per_s":
            print(f"  {case:<58} {r['implementation']:<24} train {r['value']:>12,.0f} samples/s", flush=True)
    return out


def tabular_data(seed, n=10_000, d=64, rank=8):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, rank) @ rng.randn(rank, d) + 0.3 * rng.randn(n, d)
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32)


def speed_cases(ctx, args, flush):
    """Every case in turn, each case's records handed to ``flush`` as soon as it is measured."""
    device = ctx["device"]
    on_gpu = device.startswith("cuda")
    seed = args.seed
    epochs = args.epochs or (2 if args.quick else 3)
    repeats = args.repeats or (2 if args.quick else 3)

    # tabular: 10,000 x 64, one hidden layer of 32
    X = tabular_data(seed)
    X01 = (X - X.min(0)) / (X.max(0) - X.min(0))
    for bs in [] if args.skip_tabular else args.batch_sizes:
        case = f"10000x64 64-32 bs{bs}"
        flush(measure(ctx, case, ae_impls((64, 32), bs, epochs, device, seed), X, X, epochs,
                      repeats, {"family": "autoencoder", "batch_size": bs}))
        case = f"10000x64 RBM 64-32 bs{bs}"
        flush(measure(ctx, case, rbm_impls(64, 32, bs, epochs, device, seed), X01, X01, epochs,
                      repeats, {"family": "rbm", "batch_size": bs}))

    # MNIST-sized: 60,000 x 784 binarized MNIST
    if not args.skip_mnist:
        m = C.binarized_mnist()
        X = np.concatenate([m["train"], m["valid"]])
        for bs in args.batch_sizes:
            rows = len(X) if on_gpu else min(len(X), max(args.cpu_rows, args.min_batches * bs))
            rows = min(rows, args.cpu_rows_max) if not on_gpu else rows
            rows_infer = len(X) if on_gpu else min(len(X), args.cpu_rows)
            ep = epochs if on_gpu else 1
            case = f"60000x784 784-1000-500-250-30 bs{bs}"
            flush(measure(ctx, case, ae_impls((784, 1000, 500, 250, 30), bs, ep, device, seed),
                          X[:rows], X[:rows_infer], ep, repeats, {"family": "autoencoder", "batch_size": bs},
                          cpu_rows=args.cpu_anchor_rows))
            case = f"60000x784 RBM 784-500 bs{bs}"
            flush(measure(ctx, case, rbm_impls(784, 500, bs, ep, device, seed), X[:rows],
                          X[:rows_infer], ep, repeats, {"family": "rbm", "batch_size": bs},
                          cpu_rows=args.cpu_anchor_rows))


def cpu_targets(ctx, args):
    """The two CPU targets on digits: fit wall time, ours against scikit-learn's."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import BernoulliRBM

    X = load_digits().data.astype(np.float32) / 16.0
    seed = args.seed
    repeats = args.repeats or (3 if args.quick else 5)
    epochs = 20 if args.quick else 50
    found = C.ours()
    out = []
    impls = [Impl(name, fit, device="cpu") for name, fit in digits_autoencoder_fits(epochs, seed, found).items()]
    case = f"digits 1797x64 64-128-64-8 tanh bs200 {epochs} epochs"
    out += measure(ctx, case, impls, X, X, epochs, repeats, {"family": "target", "target": True})

    rbm_epochs = 10
    impls = []
    if "BernoulliRBMStack" in found:
        cls = found["BernoulliRBMStack"]
        impls.append(Impl("BernoulliRBMStack", lambda X: make(
            cls, n_components=256, hidden_layer_sizes=(), batch_size=10, learning_rate=0.1,
            max_iter=rbm_epochs, tol=0.0, n_iter_no_change=10 ** 6, random_state=seed,
            device="cpu").fit(X), device="cpu"))
    impls.append(Impl("sklearn BernoulliRBM", lambda X: BernoulliRBM(
        n_components=256, batch_size=10, learning_rate=0.1, n_iter=rbm_epochs,
        random_state=seed).fit(X), device="cpu"))
    case = f"digits 1797x64 RBM 64-256 bs10 {rbm_epochs} epochs"
    out += measure(ctx, case, impls, X, X, rbm_epochs, repeats, {"family": "target", "target": True})
    return [{**r, "device": "cpu", "machine": C.machine("cpu")} for r in out]


def peak_memory_in_child(args):
    """Peak memory of batched inference on a memory-mapped 1,000,000 x 784 array (and on its
    first tenth, to see whether the peak grows with the rows). The array is written once; each
    (method, rows) is measured in a fresh process, because a process that has already held and
    freed large arrays reuses that memory and its RSS peak says little."""
    if "AutoencoderTransformer" not in C.ours():
        return []
    n_big, d = args.memory_rows, 784
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.f32"
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_big, d))
        rng = np.random.RandomState(args.seed)
        chunk = 50_000
        for start in range(0, n_big, chunk):  # data in [0, 1], written a chunk at a time
            X[start:start + chunk] = rng.rand(min(chunk, n_big - start), d).astype(np.float32)
        X.flush()
        del X
        for method in ("transform", "score_samples"):
            for n in (n_big // 10, n_big):
                result = Path(tmp) / "memory.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--device", args.device,
                       "--seed", str(args.seed), "--memory-rows", str(n_big),
                       "--memory-only", f"{path},{n},{method},{result}"]
                if args.threads is not None:
                    cmd += ["--threads", str(args.threads)]
                subprocess.run(cmd, check=True)
                out += json.loads(result.read_text())
    return out


def peak_memory(ctx, args):
    """In the child process: fit a small AutoencoderTransformer (784-32) on 20,000 rows of the
    memmap, then measure one ``method`` on its first ``n`` rows."""
    path, n, method, result_path = args.memory_only.split(",")
    n = int(n)
    device = ctx["device"]
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(args.memory_rows, 784))
    model = C.ours()["AutoencoderTransformer"](
        n_components=32, hidden_layer_sizes=(), max_iter=1, batch_size=256, random_state=args.seed,
        device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.array(X[:20_000]))
    Xn = X[:n]
    with C.PeakMemory(device) as mem:
        seconds, result = C.timed(lambda: getattr(model, method)(Xn), device)
    out_mb = result.nbytes / 2 ** 20
    case = f"{n}x784 memmap AE 784-32"
    extra = dict(method=method, output_mb=out_mb, rows=n, seconds=seconds,
                 note="fresh process; host anonymous RSS above the level at entry (file-backed "
                      "pages of the memmap not counted); output array included")
    print(f"  peak memory {method:<14} {n:>9} rows: RSS +{(mem.peak_rss or 0) / 2**20:8.1f} MB, "
          f"traced {mem.peak_traced / 2**20:8.1f} MB, output {out_mb:7.1f} MB, {seconds:.1f}s",
          flush=True)
    out = [C.record(ctx, SUITE, case, "AutoencoderTransformer", "peak_host_rss_mb",
                    None if mem.peak_rss is None else mem.peak_rss / 2 ** 20, **extra),
           C.record(ctx, SUITE, case, "AutoencoderTransformer", "peak_traced_numpy_mb",
                    mem.peak_traced / 2 ** 20, **extra)]
    if mem.peak_cuda is not None:
        out.append(C.record(ctx, SUITE, case, "AutoencoderTransformer", "peak_cuda_allocated_mb",
                            mem.peak_cuda / 2 ** 20, **extra))
    Path(result_path).write_text(json.dumps(out))


# ------------------------------------------------------------------------------ reporting
def markdown(records, ctx, command):
    text = C.header_lines(ctx, "Speed: training and inference throughput", command)
    text += ("Training throughput is rows x epochs / wall time of one `fit` (median of repeats, "
             "run round-robin); it includes each implementation's own set-up (validation, copies to "
             "the device, our noise-variance pass, PyOD's scoring of the training set). The "
             "`ratio` column divides our `AutoencoderTransformer` (or `BernoulliRBMStack`) by the row's "
             "implementation: above 1 means we are faster.\n\n")
    cases = list(dict.fromkeys(r["case"] for r in records if r["metric"] == "train_samples_per_s"))
    rows = []
    for case in cases:
        train = [r for r in records if r["case"] == case and r["metric"] == "train_samples_per_s"]
        family = train[0].get("family")
        ours_name = "BernoulliRBMStack" if " RBM " in f" {case} " else "AutoencoderTransformer"
        ref = next((r["value"] for r in train if r["implementation"] == ours_name), None)
        for r in train:
            inf = [i for i in records if i["case"] == case and i["implementation"] == r["implementation"]
                   and i["metric"] == "inference_samples_per_s"]
            inf_txt = "; ".join(f"{i['method']} {C.fmt(i['value'])}" for i in inf) or "—"
            ratio = None if ref is None or r["implementation"] == ours_name else ref / r["value"]
            rows.append([case, r["implementation"], r["device"], f"{r['rows_timed']} x {r['epochs']}",
                         C.fmt(r["value"]), C.fmt(ratio) if ratio else "", inf_txt])
        del family
    if rows:
        text += C.md_table(["case", "implementation", "device", "rows x epochs timed",
                            "train samples/s", "ours / this", "inference samples/s"], rows)
    mem = [r for r in records if r["metric"].startswith("peak_")]
    if mem:
        text += ("\n## Peak memory of batched inference (memory-mapped float32 input)\n\n"
                 "Each (method, rows) measured in a fresh process. "
                 "Host anonymous RSS above the level at entry, polled every 2 ms (the memmap's "
                 "file-backed pages are not counted), and the peak of NumPy/Python allocations "
                 "(tracemalloc); both include the returned array (`output MB`).\n\n")
        keyed = {}
        for r in mem:
            keyed.setdefault((r["case"], r["method"]), {})[r["metric"]] = r
        rows = []
        for (case, method), d in keyed.items():
            any_r = next(iter(d.values()))
            rows.append([case, method, C.fmt(any_r["output_mb"]),
                         C.fmt(d.get("peak_host_rss_mb", {}).get("value")),
                         C.fmt(d.get("peak_traced_numpy_mb", {}).get("value")),
                         C.fmt(d.get("peak_cuda_allocated_mb", {}).get("value")),
                         f"{any_r['seconds']:.1f}"])
        text += C.md_table(["case", "method", "output MB", "peak RSS MB", "peak traced MB",
                            "peak CUDA MB", "seconds"], rows)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser):
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for the whole run (default: torch's own)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--cpu-rows", type=int, default=None,
                        help="MNIST-sized case on the CPU: rows timed (default 4096 quick, 25600 full)")
    parser.add_argument("--min-batches", type=int, default=None)
    parser.add_argument("--cpu-rows-max", type=int, default=None,
                        help="MNIST-sized case on the CPU: at most this many rows timed")
    parser.add_argument("--memory-rows", type=int, default=None,
                        help="rows of the memory-mapped peak-memory case (default 1,000,000)")
    parser.add_argument("--cpu-anchor-rows", type=int, default=None,
                        help="GPU runs: the scikit-learn anchors of the MNIST-sized case fit on this many rows")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--memory-only", default=None, metavar="JSON",
                        help=argparse.SUPPRESS)  # the child process of the peak-memory case
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-targets", action="store_true")
    parser.add_argument("--name", default=None, help="results file name (default speed_[part_]<device>[_quick])")


def run(args, command=None):
    args.device = C.resolve_device(args.device)
    C.set_threads(args.threads)
    if args.cpu_rows is None:
        args.cpu_rows = 2048 if args.quick else 25_600
    if args.min_batches is None:
        args.min_batches = 4 if args.quick else 25
    if args.cpu_rows_max is None:
        args.cpu_rows_max = 4096 if args.quick else 60_000
    if args.memory_rows is None:
        args.memory_rows = 1_000_000
    ctx = C.context(args.device)
    if args.memory_only:
        peak_memory(ctx, args)
        return []
    only_memory = args.skip_targets and args.skip_mnist and args.skip_tabular
    only_targets = args.skip_memory and args.skip_mnist and args.skip_tabular
    part = "memory_" if only_memory else "targets_" if only_targets else ""
    name = args.name or f"speed_{part}{args.device.replace(':', '')}" + ("_quick" if args.quick else "")
    command = command or " ".join(["python benchmarks/bench_speed.py", *sys.argv[1:]])
    records = []

    def flush(new):
        """Keep what is measured so far on disk: a run cut short still leaves its records."""
        records.extend(new)
        return C.write_results(records, name, markdown(records, ctx, command))

    if not args.skip_targets:
        flush(cpu_targets(ctx, args))
    speed_cases(ctx, args, flush)
    if not args.skip_memory:
        flush(peak_memory_in_child(args))
    path = flush([])
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return records


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # ConvergenceWarning after the fixed epochs is expected here
    main()
