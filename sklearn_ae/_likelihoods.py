"""Log-probabilities, KL terms and bounds, in pure torch.

Every function here works on batches: inputs have shape ``(batch, n_features)`` (or a leading sample
axis where stated) and the result has one value per row, in nats. Nothing here knows about
estimators or training; the functions are tested against ``scipy.stats`` and ``torch.distributions``.
"""

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(x, mean, variance):
    """Sum over features of log N(x_j; mean_j, variance_j).

    ``variance`` broadcasts against ``x`` (a per-feature vector is the usual case).
    """
    variance = torch.as_tensor(variance, dtype=x.dtype, device=x.device)
    return -0.5 * (LOG_2PI + torch.log(variance) + (x - mean) ** 2 / variance).sum(dim=-1)


def bernoulli_log_prob_logits(x, logits):
    """Sum over features of x log p + (1 - x) log(1 - p), with p = sigmoid(logits).

    Computed from the logits so that saturated units cost no precision.
    """
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def bernoulli_log_prob(x, p, eps=1e-7):
    """Sum over features of x log p + (1 - x) log(1 - p) for probabilities ``p``.

    ``p`` is clipped to ``[eps, 1 - eps]`` so that a saturated decoder gives a finite value.
    """
    p = p.clamp(eps, 1.0 - eps)
    return (x * torch.log(p) + (1.0 - x) * torch.log1p(-p)).sum(dim=-1)


def standard_normal_log_prob(z):
    """Sum over dimensions of log N(z_j; 0, 1)."""
    return -0.5 * (LOG_2PI + z**2).sum(dim=-1)


def diagonal_normal_log_prob(z, mean, log_variance):
    """Sum over dimensions of log N(z_j; mean_j, exp(log_variance_j))."""
    return -0.5 * (LOG_2PI + log_variance + (z - mean) ** 2 / torch.exp(log_variance)).sum(dim=-1)


def kl_diagonal_normal_standard_normal(mean, log_variance):
    """KL(N(mean, diag(exp(log_variance))) || N(0, I)), in closed form, one value per row."""
    return 0.5 * (torch.exp(log_variance) + mean**2 - 1.0 - log_variance).sum(dim=-1)


def kl_bernoulli(rho, rho_hat, eps=1e-7):
    """Sum over units of KL(Bernoulli(rho) || Bernoulli(rho_hat_j)).

    ``rho`` is the scalar target activation, ``rho_hat`` the vector of mean activations.
    """
    rho_hat = rho_hat.clamp(eps, 1.0 - eps)
    return (
        rho * torch.log(rho / rho_hat) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - rho_hat))
    ).sum(dim=-1)


def elbo(log_likelihood, kl, beta=1.0):
    """Evidence lower bound per sample: E_q[log p(x | z)] - beta * KL(q(z | x) || p(z))."""
    return log_likelihood - beta * kl


def log_mean_exp(log_weights, dim=0):
    """log (1/K) sum_k exp(log_weights_k) along ``dim``, computed stably."""
    k = log_weights.shape[dim]
    return torch.logsumexp(log_weights, dim=dim) - math.log(k)


def iwae_bound(log_weights):
    """Importance-weighted bound log (1/K) sum_k w_k from log-weights of shape (K, batch)."""
    return log_mean_exp(log_weights, dim=0)
