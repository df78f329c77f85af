"""The likelihood math against scipy.stats and torch.distributions."""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from sklearn_ae import _likelihoods as L


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_gaussian_log_prob_matches_scipy(gen):
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    mean = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    var = torch.rand(4, generator=gen, dtype=torch.float64) + 0.1
    expected = stats.norm(mean.numpy(), np.sqrt(var.numpy())).logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(L.gaussian_log_prob(x, mean, var).numpy(), expected, rtol=1e-12)


def test_bernoulli_log_prob_matches_scipy(gen):
    x = (torch.rand(6, 7, generator=gen) > 0.5).double()
    logits = torch.randn(6, 7, generator=gen, dtype=torch.float64) * 3
    p = torch.sigmoid(logits).numpy()
    expected = stats.bernoulli(p).logpmf(x.numpy()).sum(1)
    np.testing.assert_allclose(L.bernoulli_log_prob_logits(x, logits).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(L.bernoulli_log_prob(x, torch.sigmoid(logits)).numpy(), expected,
                               rtol=1e-6)


def test_bernoulli_logits_stable_when_saturated():
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    logits = torch.tensor([[-200.0, 200.0]], dtype=torch.float64)
    assert L.bernoulli_log_prob_logits(x, logits).item() == pytest.approx(-400.0)


def test_normal_log_probs_match_torch_distributions(gen):
    z = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    mean = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    log_var = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    std = torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), 1.0)
    np.testing.assert_allclose(L.standard_normal_log_prob(z), std.log_prob(z).sum(-1), rtol=1e-12)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    np.testing.assert_allclose(L.diagonal_normal_log_prob(z, mean, log_var), q.log_prob(z).sum(-1),
                               rtol=1e-12)
    kl = torch.distributions.kl_divergence(q, std).sum(-1)
    np.testing.assert_allclose(L.kl_diagonal_normal_standard_normal(mean, log_var), kl, rtol=1e-12)


def test_kl_bernoulli_matches_scipy_entropy():
    rho_hat = torch.tensor([0.01, 0.05, 0.3, 0.9], dtype=torch.float64)
    expected = sum(stats.entropy([0.05, 0.95], [r, 1 - r]) for r in rho_hat.numpy())
    assert L.kl_bernoulli(0.05, rho_hat).item() == pytest.approx(expected, rel=1e-10)
    assert L.kl_bernoulli(0.05, torch.full((3,), 0.05)).item() == pytest.approx(0.0, abs=1e-12)


def test_log_mean_exp_and_iwae(gen):
    w = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 20
    np.testing.assert_allclose(L.iwae_bound(w), logsumexp(w.numpy(), axis=0) - np.log(50), rtol=1e-12)
    # one importance sample: the bound is the single log-weight
    np.testing.assert_allclose(L.iwae_bound(w[:1]), w[0])


def test_iwae_from_chunks_and_vae_log_weights(gen):
    """The streamed IWAE bound the VAE computes equals the bound of all log-weights at once, and
    its log-weights are log p(x | z) + log N(z; 0, I) - log N(z; mean, diag exp(log_variance))."""
    w = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 20
    chunks = [torch.logsumexp(w[a:b], dim=0) for a, b in ((0, 7), (7, 30), (30, 50))]
    torch.testing.assert_close(L.iwae_bound_from_chunks(chunks, 50), L.iwae_bound(w))
    z = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64)
    mean, log_variance = (torch.randn(3, 2, generator=gen, dtype=torch.float64) for _ in range(2))
    log_px = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    posterior = torch.distributions.Normal(mean, torch.exp(0.5 * log_variance)).log_prob(z).sum(-1)
    torch.testing.assert_close(L.vae_log_weights(log_px, z, mean, log_variance), log_px + prior - posterior)


def test_elbo():
    ll = torch.tensor([-3.0, -4.0])
    kl = torch.tensor([1.0, 0.5])
    np.testing.assert_allclose(L.elbo(ll, kl, beta=2.0), [-5.0, -5.0])


# ------------------------------------------------------------- annealing: AIS and RAISE
def all_states(n):
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def random_rbm(n_visible, n_hidden, seed, scale=1.0):
    """Weights, hidden and visible biases, and base-rate logits of a random RBM (float64)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64) * scale
    c = torch.randn(n_hidden, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(n_visible, generator=g, dtype=torch.float64) * 0.5
    base = torch.randn(n_visible, generator=g, dtype=torch.float64) * 0.5
    return W, c, b, base


def annealing_model_probabilities(W, c, b, base, betas):
    """p_ann(v) for every binary v, exactly: the distribution of the visible state that the
    forward chain of AIS (base-rate draw, one Gibbs sweep per intermediate distribution) ends
    in, by multiplying the transition matrices of the layer the chains keep."""
    W, c, b, base = (t.numpy() for t in (W, c, b, base))
    V, H = all_states(W.shape[0]), all_states(W.shape[1])

    def conditional(states, logits):  # rows: conditioning states; columns: states drawn
        return np.exp(states @ logits.T - np.logaddexp(0.0, logits).sum(1)).T

    def h_given_v(beta):
        return conditional(H, beta * (c + V @ W))  # (n_v_states, n_h_states)

    def v_given_h(beta):
        return conditional(V, (1 - beta) * base + beta * (b + H @ W.T))  # (n_h_states, n_v_states)

    if W.shape[0] <= W.shape[1]:  # the chains keep v; the last sweep, at beta = 1, gives v
        p = conditional(V, base[None, :])[0]
        for beta in betas[1:]:
            p = p @ h_given_v(beta) @ v_given_h(beta)
        return p
    p = np.full(len(H), 1.0 / len(H))  # the chains keep h, uniform at beta = 0; v comes last
    for beta in betas[1:-1]:
        p = p @ v_given_h(beta) @ h_given_v(beta)
    return p @ v_given_h(1.0)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3)])
def test_ais_weights_are_unbiased_for_z(shape):
    """Whatever the schedule, the mean AIS weight estimates Z / Z_A without bias: on a short
    schedule log Z is under-estimated only through the log (Jensen), in expectation."""
    W, c, b, base = random_rbm(*shape, seed=3, scale=1.5)
    exact = L.rbm_log_partition_exact(W, c, b)
    log_z, log_w = L.rbm_log_partition_ais(W, c, b, base, n_runs=40000, n_betas=4,
                                          generator=torch.Generator().manual_seed(0))
    log_z_base = float(torch.nn.functional.softplus(base).sum()) + shape[1] * np.log(2.0)
    w = torch.exp(log_w)
    ratio = float(w.mean()) * np.exp(log_z_base - exact)  # estimates 1
    stderr = float(w.std()) / (np.sqrt(len(w)) * float(w.mean()))
    assert abs(ratio - 1.0) < 4 * stderr
    assert float(log_w.std()) > 0.3  # a short, rough schedule: the test has something to check
    assert float((log_w + log_z_base).mean()) < exact  # the log of one run errs low


@pytest.mark.parametrize("shape", [(3, 5), (5, 3)])
def test_raise_weights_are_unbiased_for_the_annealing_model(shape):
    """The mean RAISE weight of v estimates p_ann(v), the annealing model's probability
    (computed exactly here), not the RBM's p(v): RAISE bounds log p_ann(v) from below."""
    W, c, b, base = random_rbm(*shape, seed=4, scale=1.5)
    betas = L.ais_betas(4).tolist()
    p_ann = annealing_model_probabilities(W, c, b, base, betas)
    V = torch.from_numpy(all_states(shape[0]))
    log_p = (-L.rbm_free_energy(V, W, c, b) - L.rbm_log_partition_exact(W, c, b)).numpy()
    rows = [0, 3, len(V) - 1]
    log_w = L.rbm_log_likelihood_raise(V[rows], W, c, b, base, n_runs=40000, n_betas=4,
                                       generator=torch.Generator().manual_seed(1))
    w = torch.exp(log_w)
    mean = w.mean(0).numpy()
    stderr = (w.std(0) / np.sqrt(w.shape[0])).numpy()
    np.testing.assert_array_less(np.abs(mean - p_ann[rows]), 4 * stderr)
    assert np.max(np.abs(np.log(p_ann[rows]) - log_p[rows])) > 0.1  # p_ann is not p here
    # in expectation the log of a run's weight, or of the mean of a few, errs low (Jensen)
    assert np.all(log_w.mean(0).numpy() < np.log(p_ann[rows]))
    few = L.log_mean_exp(log_w.reshape(-1, 10, len(rows)), dim=1)  # 4,000 estimates from 10 runs
    assert np.all(few.mean(0).numpy() < np.log(p_ann[rows]))


@pytest.mark.parametrize("shape, seed", [((20, 8), 0), ((8, 20), 1), ((12, 12), 2), ((12, 12), 3)])
def test_ais_and_raise_match_exact_with_enough_betas(shape, seed):
    """Both layers' orientations (the chains keep the smaller layer): with 2,000 betas AIS's
    log Z and RAISE's log p(v) are within four standard errors of the exact values."""
    W, c, b, base = random_rbm(*shape, seed=seed, scale=0.5)
    exact = L.rbm_log_partition_exact(W, c, b)
    log_z, log_w = L.rbm_log_partition_ais(W, c, b, base, n_runs=100, n_betas=2000,
                                          generator=torch.Generator().manual_seed(seed))
    _, stderr, ess, _ = L.importance_summary(log_w)
    assert abs(log_z - exact) < 4 * float(stderr) + 1e-3 and float(ess) > 50
    V = (torch.rand(6, shape[0], generator=torch.Generator().manual_seed(9)) < 0.5).double()
    log_p = -L.rbm_free_energy(V, W, c, b) - exact
    lower, lower_stderr, _, _ = L.importance_summary(
        L.rbm_log_likelihood_raise(V, W, c, b, base, n_runs=50, n_betas=2000,
                                   generator=torch.Generator().manual_seed(seed)))
    assert torch.all((lower - log_p).abs() < 4 * lower_stderr + 1e-3)


def test_raise_rows_do_not_depend_on_each_other():
    W, c, b, base = random_rbm(6, 9, seed=5)
    V = (torch.rand(7, 6, generator=torch.Generator().manual_seed(2)) < 0.5).double()

    def raise_(rows):
        return L.rbm_log_likelihood_raise(V[rows], W, c, b, base, n_runs=3, n_betas=50,
                                          generator=torch.Generator().manual_seed(0))

    torch.testing.assert_close(raise_(slice(2, 5)), raise_(slice(None))[:, 2:5], rtol=0, atol=1e-10)


def test_softplus_increment_keeps_precision_of_tiny_steps():
    """float32, for steps from 1e-7 to 1: within 1e-5 relative of float64 (where the plain
    difference softplus(z + delta) - softplus(z) in float32 loses every digit)."""
    z = torch.linspace(-30, 30, 601)
    for scale in (1e-7, 1e-4, 1e-2, 1.0):
        delta = torch.linspace(-scale, scale, 601).flip(0)
        z64, delta64 = z.double(), delta.double()
        reference = torch.log1p(torch.sigmoid(z64) * torch.expm1(delta64))  # the same identity
        if scale >= 1e-4:  # ... which is the definition, where float64 resolves the difference
            plain = torch.nn.functional.softplus(z64 + delta64) - torch.nn.functional.softplus(z64)
            torch.testing.assert_close(reference, plain, rtol=1e-6, atol=1e-12)
        ours = L.softplus_increment(z, delta).double()
        mask = reference != 0
        assert ((ours - reference)[mask] / reference[mask]).abs().max() < 1e-5, scale
        inplace = L.softplus_increment(z.clone(), delta.clone(), inplace=True)
        torch.testing.assert_close(inplace, ours.float())
    # what the identity avoids: the plain float32 difference of a 1e-6 step
    naive = torch.nn.functional.softplus(z + 1e-6) - torch.nn.functional.softplus(z)
    exact = torch.log1p(torch.sigmoid(z.double()) * np.expm1(1e-6))
    assert ((naive.double() - exact) / exact)[z > 5].abs().max() > 0.05


def test_float32_increments_match_float64(monkeypatch):
    """The bulk log-weight increments of a block of steps, float32 path against float64."""
    W, c, b, base = random_rbm(10, 30, seed=6)
    path = L._AnnealingPath(W, c, b, base)
    g = torch.Generator().manual_seed(0)
    states = (torch.rand(32, 20, path.n_state, generator=g) < 0.5).float()
    products = states @ path.m  # (steps, rows, n_t + 1)
    betas = L.ais_betas(3000).tolist()[2000:2033]
    block = [(lo, hi, True) for lo, hi in zip(betas[:-1], betas[1:])]
    ours = path._increments(products, block)
    monkeypatch.setattr(L, "FLOAT32_MAX_INCREMENT", 0.0)  # everything through float64
    reference = path._increments(products, block)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-7)
    # and the float64 path is the plain definition, log f_hi(s) - log f_lo(s)
    s = states.double()
    lo, hi = (torch.tensor(x, dtype=torch.float64)[:, None] for x in (betas[:-1], betas[1:]))

    def log_f(beta):
        return (s @ base + beta * (s @ (b - base))
                + torch.nn.functional.softplus(beta[..., None] * (s @ W + c)).sum(-1))

    torch.testing.assert_close(reference, (log_f(hi) - log_f(lo)).sum(0), rtol=1e-9, atol=1e-9)


def test_importance_summary():
    log_w = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 0.5]], dtype=torch.float64)
    log_mean, stderr, ess, spread = L.importance_summary(log_w)
    w = np.exp(log_w.numpy())
    np.testing.assert_allclose(log_mean, np.log(w.mean(0)))
    np.testing.assert_allclose(ess, w.sum(0) ** 2 / (w**2).sum(0))
    np.testing.assert_allclose(stderr, w.std(0, ddof=1) / (np.sqrt(3) * w.mean(0)))
    np.testing.assert_allclose(spread, log_w.numpy().std(0, ddof=1))
    assert ess[0] == pytest.approx(3.0) and stderr[0] == 0.0
