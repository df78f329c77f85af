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


# ------------------------------------------------------------------------- RBM
def rbm_free_energy(v, weight, hidden_bias, visible_bias):
    """Free energy of a Bernoulli RBM, F(v) = -v.b - sum_j softplus(c_j + v.W[:, j]).

    ``weight`` has shape (n_visible, n_hidden); ``v`` has a leading batch axis (or several).
    p(v) = exp(-F(v)) / Z.
    """
    return -(v @ visible_bias) - F.softplus(v @ weight + hidden_bias).sum(dim=-1)


def rbm_free_energy_gap(v, x_data, v_model, x_model, visible_bias):
    """Per-sample F(v) - F(v_model) from the hidden units' total inputs at both ends of a Gibbs
    chain (``x_data = c + v W``, ``x_model = c + v_model W``)."""
    return ((v_model - v) @ visible_bias + F.softplus(x_model).sum(dim=-1)
            - F.softplus(x_data).sum(dim=-1))


def rbm_cd_gradients(v, h_data, v_model, h_model, grad):
    """Gradients of sum_n grad_n [F(v_n) - F(v_model_n)] with respect to (W, c, b), v_model held
    constant: dF(v)/dW = -v h(v)^T, dF(v)/dc = -h(v), dF(v)/db = -v, with h(v) the hidden
    probabilities at v (``h_data``, ``h_model``). ``grad`` is a per-sample tensor, or one number
    for all samples (1/n: minus the CD-k or PCD estimate of the log-likelihood gradient,
    averaged over the batch)."""
    if torch.is_tensor(grad):
        g = grad[:, None]
        return (v_model.T @ (g * h_model) - v.T @ (g * h_data), (g * (h_model - h_data)).sum(0),
                (g * (v_model - v)).sum(0))
    return (torch.addmm(v_model.T @ h_model, v.T, h_data, beta=grad, alpha=-grad),
            (h_model - h_data).sum(0).mul_(grad), (v_model - v).sum(0).mul_(grad))


def binary_states(n_units, start, stop, dtype=torch.float64, device=None):
    """Rows ``start .. stop - 1`` of the table of all 2**n_units binary vectors (bit j of the row
    index is unit j)."""
    index = torch.arange(start, stop, device=device)
    bits = torch.arange(n_units, device=device)
    return ((index[:, None] >> bits) & 1).to(dtype)


def rbm_log_partition_exact(weight, hidden_bias, visible_bias, chunk=1 << 14):
    """log Z of a Bernoulli RBM by enumerating every state of its smaller side (float64).

    Summing out the other side in closed form, log Z = logsumexp over h of
    [h.c + sum_i softplus(b_i + W[i].h)] (or the same with the roles swapped). The cost is
    2**min(n_visible, n_hidden) rows, processed ``chunk`` at a time.
    """
    weight, hidden_bias, visible_bias = (t.double() for t in (weight, hidden_bias, visible_bias))
    n_visible, n_hidden = weight.shape
    if n_hidden > n_visible:  # enumerate v; -F(v) sums h out
        weight, hidden_bias, visible_bias = weight.T, visible_bias, hidden_bias
        n_visible, n_hidden = n_hidden, n_visible
    total = 1 << n_hidden
    parts = []
    for start in range(0, total, chunk):
        h = binary_states(n_hidden, start, min(start + chunk, total), device=weight.device)
        parts.append(torch.logsumexp(-rbm_free_energy(h, weight.T, visible_bias, hidden_bias), dim=0))
    return float(torch.logsumexp(torch.stack(parts), dim=0))


def ais_betas(n_betas, dtype=torch.float64, device=None):
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 of Salakhutdinov & Murray (2008): of
    14,500 steps, 500 spaced uniformly in [0, 0.5], 4,000 in [0.5, 0.9] and 10,000 in
    [0.9, 1]; other sizes keep those proportions."""
    n1 = max(1, round(n_betas * 500 / 14500))
    n2 = max(1, round(n_betas * 4000 / 14500))
    n3 = max(1, n_betas - n1 - n2)
    return torch.cat([
        torch.linspace(0.0, 0.5, n1 + 1, dtype=dtype, device=device)[:-1],
        torch.linspace(0.5, 0.9, n2 + 1, dtype=dtype, device=device)[:-1],
        torch.linspace(0.9, 1.0, n3 + 1, dtype=dtype, device=device),
    ])


def rbm_log_partition_ais(weight, hidden_bias, visible_bias, base_visible_bias, *, n_runs=100,
                          n_betas=14500, generator=None):
    """Annealed importance sampling estimate of log Z of a Bernoulli RBM (float64).

    Anneals from the base-rate model p_A(v) proportional to exp(v.base_visible_bias) (no hidden
    interactions; its log Z is known) to the RBM through the intermediate distributions
    p_k(v) proportional to exp((1 - beta_k) v.b_A + beta_k v.b) prod_j (1 + exp(beta_k (c_j + v.W[:, j]))),
    with one Gibbs sweep at each beta. All ``n_runs`` chains advance together, on the device of
    ``weight``; ``generator`` (on that device) seeds them.

    Returns ``(log_z, log_weights)``: the estimate log Z_A + log mean_r exp(log_weights_r) and
    the ``n_runs`` log importance weights, whose spread measures the quality of the annealing.
    """
    weight, hidden_bias, visible_bias, base = (
        t.detach().double() for t in (weight, hidden_bias, visible_bias, base_visible_bias))
    device = weight.device
    n_visible, n_hidden = weight.shape
    betas = ais_betas(n_betas).tolist()
    log_z_base = float(F.softplus(base).sum()) + n_hidden * math.log(2.0)

    # The chains run in float32 (binary states, sampling only); the log-weights, which sum
    # 14,500 small increments, are accumulated in float64 from float64 hidden inputs.
    # One matmul gives each chain's hidden input and its visible-bias term (b - b_A).v.
    joint = torch.cat([weight, (visible_bias - base)[:, None]], dim=1).float()  # (n_visible, n_hidden + 1)
    joint_bias = torch.cat([hidden_bias, hidden_bias.new_zeros(1)]).float()
    weight_t = weight.T.float().contiguous()
    base32, visible_bias32 = base.float(), visible_bias.float()
    uniform = torch.rand(n_runs, n_visible, generator=generator, device=device)
    v = (uniform < torch.sigmoid(base32)).float()  # exact samples of the base-rate model
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=device)
    n_steps = len(betas) - 1
    block = 64  # uniforms are drawn for this many steps at once
    for first in range(0, n_steps, block):
        size = min(block, n_steps - first)
        uniforms = torch.rand(size, n_runs, n_hidden + n_visible, generator=generator, device=device)
        for step in range(size):
            beta_prev, beta = betas[first + step], betas[first + step + 1]
            a = torch.addmm(joint_bias, v, joint).double()
            x = a[:, :n_hidden]  # (n_runs, n_hidden)
            # log f_beta(v) - log f_beta_prev(v), unit by unit before summing (keeps precision)
            log_w += (F.softplus(beta * x) - F.softplus(beta_prev * x)).sum(dim=1)
            log_w += (beta - beta_prev) * a[:, n_hidden]
            # one Gibbs sweep that leaves p_beta invariant
            u = uniforms[step]
            h = (u[:, :n_hidden] < torch.sigmoid(beta * x)).float()
            visible_input = torch.addmm((1.0 - beta) * base32 + beta * visible_bias32, h, weight_t,
                                        alpha=beta)
            v = (u[:, n_hidden:] < torch.sigmoid(visible_input)).float()
    log_z = log_z_base + float(log_mean_exp(log_w))
    return log_z, log_w
