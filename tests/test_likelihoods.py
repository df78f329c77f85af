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


def test_elbo():
    ll = torch.tensor([-3.0, -4.0])
    kl = torch.tensor([1.0, 0.5])
    np.testing.assert_allclose(L.elbo(ll, kl, beta=2.0), [-5.0, -5.0])
