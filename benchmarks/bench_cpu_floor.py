"""What limits the two CPU speed targets: torch's own kernels and per-call cost, measured.

Two targets compare us on the CPU with NumPy-based anchors: ``AutoencoderTransformer`` against
``MLPRegressor(X -> X)`` on digits, and a single-layer ``BernoulliRBMStack`` against
``BernoulliRBM`` at batch 10. This script separates what our wrapper adds from what PyTorch
itself costs on this machine, in one process:

- kernels: the matrix products and the tanh of the digits autoencoder's step (batch 200,
  64-128-64-8 and mirror) and the small products of an RBM step at batch 10, each timed in torch
  (float32, one intra-op thread, as our estimators run such small steps) and in NumPy;
- floors: a bare PyTorch loop, written for speed and doing the same arithmetic as the anchor,
  next to the anchor and to our estimator, fit wall time (median of interleaved repeats):

  * RBM-features protocol (nudged digits, 7,188 x 64 training rows, 100 hidden units, learning
    rate 0.06, batch 10, 10 epochs, persistent CD-1 as ``BernoulliRBM`` does): the bare loop has
    no momentum and no checks, and runs once without any loss and once computing each batch's
    free-energy gap (the loss a stopping rule watches; ``BernoulliRBM`` computes none);
  * digits autoencoder (1797 x 64, 64-128-64-8 tanh and mirror, Adam, batch 200, 50 epochs): the
    bare loop is forward, mean squared error, backward and a fused Adam step on pre-sliced
    batches.

If the bare loop cannot beat the anchor, no wrapper around torch can on this CPU: the gap is
torch's, and the table says by how much.

    python benchmarks/bench_cpu_floor.py
"""

import argparse
import sys
import time

import numpy as np
import torch
from torch import nn

import _common as C
from bench_speed import digits_autoencoder_fits, mirror_mlp

SUITE = "speed"


def per_call_us(fn, calls=2000, repeats=5):
    """Median over ``repeats`` of the mean time of one call, in microseconds."""
    for _ in range(50):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return C.median(times)


def kernels(ctx):
    """torch vs NumPy on the shapes of the two small steps."""
    rng = np.random.default_rng(0)
    cases = []
    for m, k, n, what in [(200, 64, 128, "autoencoder layer 1"), (200, 128, 64, "autoencoder layer 2"),
                          (200, 64, 8, "autoencoder code layer"), (128, 200, 64, "autoencoder weight gradient"),
                          (10, 64, 100, "RBM step at batch 10")]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        cases.append((f"matmul {m}x{k} @ {k}x{n} ({what})", lambda ta=ta, tb=tb: ta @ tb, lambda a=a, b=b: a @ b))
    h = rng.standard_normal((200, 128)).astype(np.float32)
    th = torch.from_numpy(h)
    cases.append(("tanh 200x128 (autoencoder activation)", lambda: torch.tanh(th), lambda: np.tanh(h)))
    p = rng.random((10, 100)).astype(np.float32)
    tp, gen, np_rng = torch.from_numpy(p), torch.Generator().manual_seed(0), np.random.RandomState(0)
    cases.append(("Bernoulli sample 10x100 (RBM step)",
                  lambda: (torch.rand(tp.shape, generator=gen) < tp).to(tp.dtype),
                  lambda: (np_rng.uniform(size=p.shape) < p).astype(p.dtype)))
    records, rows = [], []
    for name, torch_fn, numpy_fn in cases:
        t_torch, t_numpy = per_call_us(torch_fn), per_call_us(numpy_fn)
        for impl, t in (("torch", t_torch), ("numpy", t_numpy)):
            records.append(C.record(ctx, SUITE, f"kernel {name} float32", impl, "microseconds_per_call", t))
        rows.append([name, C.fmt(t_torch, 3), C.fmt(t_numpy, 3), C.fmt(t_torch / t_numpy, 3)])
    return records, rows


def interleaved(impls, repeats):
    """Median fit seconds of each ``(name, fn)``, repeats run round-robin after one warm-up."""
    for _, fn in impls:
        fn()
    times = {name: [] for name, _ in impls}
    for _ in range(repeats):
        for name, fn in impls:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: C.median(t) for name, t in times.items()}


def bare_rbm(X, n_hidden, learning_rate, batch_size, epochs, seed=0, with_loss=False):
    """Persistent CD-1 in torch with the fewest operations per step (BernoulliRBM's update);
    ``with_loss`` adds what a stopping rule needs: each batch's mean free-energy gap
    F(v) - F(v_model), kept on the device and read back once per epoch."""
    softplus = nn.functional.softplus
    gen = torch.Generator().manual_seed(seed)
    X = torch.from_numpy(X)
    W = torch.empty(X.shape[1], n_hidden).normal_(0, 0.01, generator=gen)
    hb, vb = torch.zeros(n_hidden), torch.zeros(X.shape[1])
    chain = torch.zeros(batch_size, n_hidden)
    with torch.no_grad():
        for _ in range(epochs):
            Xs = X[torch.randperm(len(X), generator=gen)]
            losses = torch.empty(-(-len(Xs) // batch_size), dtype=torch.float64)
            for i, start in enumerate(range(0, len(Xs), batch_size)):
                v = Xs[start:start + batch_size]
                step = learning_rate / v.shape[0]
                x_data = torch.addmm(hb, v, W)
                h_data = torch.sigmoid(x_data)
                p_v = torch.sigmoid(torch.addmm(vb, chain[:v.shape[0]], W.T))
                v_model = torch.rand(p_v.shape, generator=gen).lt_(p_v)
                x_model = torch.addmm(hb, v_model, W)
                h_model = torch.sigmoid(x_model)
                chain = torch.rand(h_model.shape, generator=gen).lt_(h_model)
                dv = v.sum(0) - v_model.sum(0)
                if with_loss:
                    losses[i] = (softplus(x_model).sum() - softplus(x_data).sum() - dv @ vb) / v.shape[0]
                W.addmm_(v.T, h_data, alpha=step).addmm_(v_model.T, h_model, alpha=-step)
                hb.add_(h_data.sum(0) - h_model.sum(0), alpha=step)
                vb.add_(dv, alpha=step)
            if with_loss:
                float(losses.mean())
    return W


def bare_autoencoder(X, sizes, batch_size, epochs, seed=0):
    """Forward, MSE, backward and fused Adam over pre-sliced batches: torch's floor for this net."""
    torch.manual_seed(seed)
    net = mirror_mlp(sizes, activation=nn.Tanh)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    X = torch.from_numpy(X)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for xb in X[torch.randperm(len(X), generator=gen)].split(batch_size):
            opt.zero_grad(set_to_none=True)
            loss = ((net(xb) - xb) ** 2).mean()
            loss.backward()
            opt.step()
    return net


def floors(ctx, repeats):
    from sklearn.datasets import load_digits
    from sklearn.neural_network import BernoulliRBM

    from bench_rbm_mnist import nudged_digits
    from sklearn_ae import BernoulliRBMStack

    records, rows = [], []
    X_rbm = np.ascontiguousarray(nudged_digits()[0])
    rbm_case = f"RBM-features protocol {X_rbm.shape[0]}x64 RBM 64-100 PCD-1 lr 0.06 bs10 10 epochs"
    rbm = {"sklearn BernoulliRBM": lambda: BernoulliRBM(n_components=100, learning_rate=0.06, batch_size=10,
                                                        n_iter=10, random_state=0).fit(X_rbm),
           "bare PyTorch loop": lambda: bare_rbm(X_rbm, 100, 0.06, 10, 10),
           "bare PyTorch loop + per-batch loss": lambda: bare_rbm(X_rbm, 100, 0.06, 10, 10, with_loss=True),
           "BernoulliRBMStack": lambda: BernoulliRBMStack(n_components=100, learning_rate=0.06, batch_size=10,
                                                          max_iter=10, random_state=0, device="cpu").fit(X_rbm)}
    X_ae = (load_digits().data / 16.0).astype(np.float32)
    ae_case = "digits 1797x64 64-128-64-8 tanh bs200 50 epochs float32"
    fits = digits_autoencoder_fits(50, 0)
    ae = {"sklearn MLPRegressor": lambda: fits["sklearn MLPRegressor"](X_ae),
          "bare PyTorch loop": lambda: bare_autoencoder(X_ae, (64, 128, 64, 8), 200, 50),
          "AutoencoderTransformer": lambda: fits["AutoencoderTransformer"](X_ae)}
    for case, impls, anchor in ((rbm_case, rbm, "sklearn BernoulliRBM"), (ae_case, ae, "sklearn MLPRegressor")):
        med = interleaved(list(impls.items()), repeats)
        for name, t in med.items():
            records.append(C.record(ctx, SUITE, case, name, "fit_seconds", t, anchor_seconds=med[anchor]))
            rows.append([case, name, C.fmt(t, 3), C.fmt(med[anchor] / t, 3)])
    return records, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    C.set_threads(1)  # as our estimators run steps this small
    ctx = C.context("cpu")
    kernel_records, kernel_rows = kernels(ctx)
    floor_records, floor_rows = floors(ctx, args.repeats)
    command = ("python benchmarks/bench_cpu_floor.py " + " ".join(sys.argv[1:])).strip()
    md = C.header_lines(ctx, "CPU floor: torch kernels and a bare torch loop next to the NumPy anchors", command)
    md += ("Kernels in torch (float32, one intra-op thread) and in NumPy, microseconds per call (median of 5).\n\n")
    md += C.md_table(["kernel", "torch (us)", "NumPy (us)", "torch / NumPy"], kernel_rows)
    md += ("\nFit wall time, median of interleaved repeats, torch on one intra-op thread. The last column "
           "divides the anchor's time by the row's: above 1 is faster than the anchor.\n\n")
    md += C.md_table(["case", "implementation", "fit s", "anchor time / this"], floor_rows)
    path = C.write_results(kernel_records + floor_records, "speed_cpu_floor", md)
    print(md)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
