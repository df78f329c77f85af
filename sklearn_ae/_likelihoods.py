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


def vae_log_weights(log_likelihood, z, mean, log_variance):
    """Importance log-weights log p(x | z) + log p(z) - log q(z | x) of a VAE with a standard
    normal prior and a diagonal Gaussian encoder; ``z`` has leading sample axes."""
    return log_likelihood + standard_normal_log_prob(z) - diagonal_normal_log_prob(z, mean, log_variance)


def iwae_bound_from_chunks(chunk_log_sum_exps, n_samples):
    """``iwae_bound`` of K = ``n_samples`` log-weights processed in chunks: from the log-sum-exp
    of each chunk's log-weights (memory bounded by one chunk)."""
    return torch.logsumexp(torch.stack(list(chunk_log_sum_exps)), dim=0) - math.log(n_samples)


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


# ----------------------------------------------------------- annealing: AIS and RAISE
#: Gibbs steps whose random numbers are drawn, and whose log-weight increments are computed,
#: together (fewer, larger torch operations than one of each per step)
ANNEAL_BLOCK = 32

#: a step moves a unit's input by at most this much before its increment is computed in float64
FLOAT32_MAX_INCREMENT = 1.0


def importance_summary(log_weights, dim=0):
    """Summary of importance weights given by their logs along ``dim``.

    Returns ``(log_mean, stderr, ess, log_weight_std)``: log of the mean weight, the standard
    error of that log (delta method: std(w) / (sqrt(n) mean(w))), the effective sample size
    (sum w)^2 / sum w^2, and the standard deviation of the log-weights, each of the shape of
    ``log_weights`` without ``dim``.
    """
    log_weights = log_weights.double()
    n = log_weights.shape[dim]
    w = torch.exp(log_weights - log_weights.amax(dim=dim, keepdim=True))
    mean = w.mean(dim=dim)
    stderr = w.std(dim=dim) / (math.sqrt(n) * mean) if n > 1 else torch.full_like(mean, math.nan)
    ess = w.sum(dim=dim) ** 2 / (w**2).sum(dim=dim)
    std = log_weights.std(dim=dim) if n > 1 else torch.zeros_like(mean)
    return log_mean_exp(log_weights, dim=dim), stderr, ess, std


def softplus_increment(z, delta, inplace=False):
    """softplus(z + delta) - softplus(z), elementwise, without cancellation for small ``delta``.

    Written as log1p(sigmoid(z) * expm1(delta)), whose argument stays above -0.64 when
    ``|delta| <= 1`` (the annealing steps of AIS), so the result keeps the relative precision
    of the dtype however small it is. ``inplace=True`` overwrites ``z`` and ``delta``.
    """
    if not inplace:
        return torch.log1p(torch.sigmoid(z) * torch.expm1(delta))
    return z.sigmoid_().mul_(delta.expm1_()).log1p_()


class _AnnealingPath:
    """The path of distributions of AIS and RAISE for a Bernoulli RBM, in one layer's space.

    p_beta(v, h) is proportional to exp((1 - beta) v.b_A + beta (v.b + h.c + v.W.h)), from the
    base-rate model (beta = 0: v independent with logits b_A, h uniform; log Z_A is known) to
    the RBM (beta = 1). The chains keep the state s of the smaller layer and sum the larger
    layer t out in closed form:

        log f_beta(s) = s.s_A + beta s.(s_b - s_A) + sum_j softplus(z_j),
        z = t_A + beta (t_b - t_A + s.M),

    where z is also the input with which a Gibbs sweep at beta samples t. Summing the larger
    layer out removes more sampling noise than summing the smaller (on the default RBM of the
    digits the log-weights spread half as much) for one softplus per unit of it and step.
    Transitions and increments run in float32, the log-weights are accumulated in float64.
    """

    def __init__(self, weight, hidden_bias, visible_bias, base_visible_bias):
        weight, hidden_bias, visible_bias, base = (
            t.detach().double() for t in (weight, hidden_bias, visible_bias, base_visible_bias))
        n_visible, n_hidden = weight.shape
        self.visible_state = n_visible <= n_hidden
        zeros = torch.zeros_like
        if self.visible_state:  # s = v, t = h
            s_base, s_bias, t_base, t_bias, m = base, visible_bias, zeros(hidden_bias), hidden_bias, weight
        else:  # s = h, t = v
            s_base, s_bias, t_base, t_bias, m = zeros(hidden_bias), hidden_bias, base, visible_bias, weight.T
        n_s, n_t = m.shape
        self.n_state, self.n_summed = n_s, n_t
        self.log_z_base = float(F.softplus(s_base).sum() + F.softplus(t_base).sum())
        # z and, in an extra last column, beta s.(s_b - s_A) (the state's own term) in one matmul
        self.m = torch.cat([m, (s_bias - s_base)[:, None]], dim=1).float()  # (n_s, n_t + 1)
        self.m_back = torch.cat([m.T, m.new_zeros(1, n_s)]).float()  # (n_t + 1, n_s); extra row 0
        self.t_base = torch.cat([t_base, t_base.new_zeros(1)]).float()
        self.t_gap = torch.cat([t_bias - t_base, t_base.new_zeros(1)]).float()
        self.s_base, self.s_gap = s_base.float(), (s_bias - s_base).float()
        self.base = torch.cat([self.t_base, self.s_base])  # both layers, t first
        self.gap = torch.cat([self.t_gap, self.s_gap])
        # the largest |t_b - t_A + s.M| over all binary s: bounds how far one step moves z
        gap = t_bias - t_base
        self.max_input = float(torch.maximum(gap + m.clamp(min=0).sum(0),
                                             -(gap + m.clamp(max=0).sum(0))).max())
        # RAISE starts from the data: the RBM's own parameters, visible side first
        self.weight, self.hidden_bias, self.visible_bias = weight, hidden_bias, visible_bias

    def sample_base(self, n_runs, generator):
        """Exact draws of the state layer under the base-rate model, shape (n_runs, 1, n_s)."""
        u = torch.rand(n_runs, 1, self.n_state, generator=generator, device=self.m.device)
        return (u < torch.sigmoid(self.s_base)).float()

    def state_from_data(self, v, n_runs, generator):
        """RAISE's starting states for the rows of ``v``, shape (n_runs, n_rows, n_s).

        With the visible layer as the state, the data itself (RAISE's first Gibbs sweep, at
        beta = 1, then moves it); with the hidden layer, h ~ p(h | v) of the RBM, one draw per
        run from uniforms shared by every row (common random numbers).
        """
        v = v.float()
        if self.visible_state:
            return v.unsqueeze(0).expand(n_runs, -1, -1)
        u = torch.rand(n_runs, 1, self.n_state, generator=generator, device=v.device)
        logits = torch.addmm(self.hidden_bias.float(), v, self.weight.float())  # (n_rows, n_hidden)
        return (u < torch.sigmoid(logits)).float()

    def _steps(self, betas, reverse):
        """(beta_lo, beta_hi, sweep) for each step in the order run: the increment is
        log f_hi(s) - log f_lo(s), and ``sweep`` says whether a Gibbs sweep at beta_hi moves s
        after it (forward) or before it (reverse)."""
        n_steps = len(betas) - 1
        if not reverse:  # AIS: weigh s, then move it at beta_{k+1} (no move after the last step)
            return [(betas[k], betas[k + 1], k < n_steps - 1) for k in range(n_steps)]
        # RAISE: move s at beta_{k+1}, then weigh it; a hidden state drawn from p(h | v) at
        # beta_K = 1 needs no first sweep
        return [(betas[k], betas[k + 1], k < n_steps - 1 or self.visible_state)
                for k in reversed(range(n_steps))]

    def run(self, state, betas, *, reverse, generator, progress=None):
        """Run the chains ``state`` (n_runs, n_rows, n_s) along ``betas`` (a list of floats).

        Forward (AIS): at k = 0 .. K-1 add log f_{k+1}(s) - log f_k(s), then move s by a Gibbs
        sweep that leaves p_{k+1} invariant. Reverse (RAISE): at k = K-1 .. 0 move s by a sweep
        at beta_{k+1}, then add the same increment. Returns the summed increments, float64 of
        shape (n_runs, n_rows); ``progress(n)`` is called after every ``n`` steps.
        """
        n_runs, n_rows, n_s = state.shape
        n_t1 = self.n_summed + 1
        device = state.device
        steps = self._steps(betas, reverse)
        total = torch.zeros(n_runs, n_rows, dtype=torch.float64, device=device)
        s = state.reshape(n_runs * n_rows, n_s).clone()
        t = s.new_empty(n_runs * n_rows, n_t1)
        x = s.new_empty(n_runs * n_rows, n_s)
        s3, t3, x3 = (a.view(n_runs, n_rows, -1) for a in (s, t, x))
        prod = s @ self.m  # s.M for the current s: the t layer's input, less bias and beta
        for first in range(0, len(steps), ANNEAL_BLOCK):
            block = steps[first:first + ANNEAL_BLOCK]
            size = len(block)
            # a unit whose input base + beta (gap + product) beats logistic noise logit(u) is on:
            # product > logit(u) / beta - (base / beta + gap), drawn here for the whole block
            inv_beta = torch.tensor([1.0 / hi for _, hi, _ in block], device=device)[:, None]
            offset = torch.addcmul(self.gap, inv_beta, self.base).neg_().view(size, 1, 1, -1)
            noise = torch.rand(size, n_runs, 1, n_t1 + n_s, generator=generator,
                               device=device).logit_()
            thresholds = torch.addcmul(offset, noise, inv_beta.view(size, 1, 1, 1), out=noise)
            t_noise, s_noise = thresholds[..., :n_t1], thresholds[..., n_t1:]
            products = s.new_empty(size, n_runs * n_rows, n_t1)  # s.M at each step, for the weights
            for (_, _, sweep), out, t_thr, s_thr in zip(block, products, t_noise, s_noise):
                if reverse and sweep:  # move, then weigh
                    torch.gt(prod.view(n_runs, n_rows, n_t1), t_thr, out=t3)
                    torch.mm(t, self.m_back, out=x)
                    torch.gt(x3, s_thr, out=s3)
                torch.mm(s, self.m, out=out)
                prod = out
                if not reverse and sweep:  # weigh, then move
                    torch.gt(prod.view(n_runs, n_rows, n_t1), t_thr, out=t3)
                    torch.mm(t, self.m_back, out=x)
                    torch.gt(x3, s_thr, out=s3)
            total += self._increments(products, block).view(n_runs, n_rows)
            if progress is not None:
                progress(size)
        return total

    def _increments(self, products, block):
        """log f_hi(s) - log f_lo(s) of every step of a block from the products s.M (size,
        rows, n_t + 1) of its states; float64 of shape (rows,), summed over the steps."""
        device = products.device
        lo, hi = (torch.tensor([b[j] for b in block], dtype=torch.float64, device=device)
                  for j in range(2))
        step = hi - lo
        prod_t, own = products[..., :-1], products[..., -1]
        total = (own.double() * step[:, None]).sum(0)  # (hi - lo) s.(s_b - s_A)
        t_base, t_gap = self.t_base[:-1], self.t_gap[:-1]
        # z = t_A + lo (t_gap + s.M) at beta_lo, and hi moves it by (hi - lo) (t_gap + s.M)
        if float(step.max()) * self.max_input > FLOAT32_MAX_INCREMENT:  # coarse: in float64
            d = prod_t.double() + t_gap.double()
            z = torch.addcmul(t_base.double(), lo[:, None, None], d)
            inc = F.softplus(torch.addcmul(z, step[:, None, None], d)) - F.softplus(z)
            return total + inc.sum(dim=(0, 2))
        lo32, step32 = lo.float()[:, None, None], step.float()[:, None, None]
        z = torch.addcmul(torch.addcmul(t_base, lo32, t_gap), lo32, prod_t)
        delta = torch.addcmul(step32 * t_gap, step32, prod_t)
        inc = softplus_increment(z, delta, inplace=True).sum(dim=2)
        return total + inc.sum(dim=0, dtype=torch.float64)


def rbm_log_partition_ais(weight, hidden_bias, visible_bias, base_visible_bias, *, n_runs=100,
                          n_betas=14500, generator=None, progress=None):
    """Annealed importance sampling estimate of log Z of a Bernoulli RBM.

    Anneals from the base-rate model p_A(v) proportional to exp(v.base_visible_bias) (no
    interactions; its log Z is known) to the RBM along the path of :class:`_AnnealingPath`,
    ``n_runs`` chains together on the device of ``weight``, one Gibbs sweep per intermediate
    distribution; ``generator`` (on that device) seeds them.

    Returns ``(log_z, log_weights)``: the estimate log Z_A + log mean_r exp(log_weights_r)
    and the ``n_runs`` log importance weights (float64), whose spread measures the quality of
    the annealing. mean_r exp(log_weights_r) estimates Z / Z_A without bias, so log_z
    underestimates log Z in expectation (Jensen), the more so the fewer the betas.
    """
    path = _AnnealingPath(weight, hidden_bias, visible_bias, base_visible_bias)
    state = path.sample_base(n_runs, generator)
    betas = ais_betas(n_betas).tolist()
    log_w = path.run(state, betas, reverse=False, generator=generator, progress=progress).view(n_runs)
    return path.log_z_base + float(log_mean_exp(log_w)), log_w


def rbm_log_likelihood_raise(v, weight, hidden_bias, visible_bias, base_visible_bias, *,
                             n_runs=10, n_betas=1000, generator=None, progress=None):
    """Reverse annealed importance sampling (RAISE) log-weights for log p(v) of each row of v.

    Burda, Grosse and Salakhutdinov (2015): each chain starts at the data and is annealed
    backwards, from the RBM to the base-rate model, along the path of AIS. Its weight
    w = f(v) / (Z_A prod_k f_{k+1}(s_k) / f_k(s_k)) is an unbiased estimate of p_ann(v), the
    probability of v under the *annealing model* (draw from the base-rate model, then run the
    AIS chain forward and keep its last visible state). Hence log mean_r w_r is a stochastic
    lower bound on log p_ann(v) (E[log mean w] <= log p_ann(v), Jensen), and p_ann tends to the
    RBM's p as the betas grow. The uniforms are shared by the rows (common random numbers), so
    a row's weights do not depend on the other rows.

    Returns the log-weights, float64 of shape (n_runs, n_rows).
    """
    path = _AnnealingPath(weight, hidden_bias, visible_bias, base_visible_bias)
    state = path.state_from_data(v, n_runs, generator)
    betas = ais_betas(n_betas).tolist()
    annealed = path.run(state, betas, reverse=True, generator=generator, progress=progress)
    w, c, b = path.weight, path.hidden_bias, path.visible_bias
    log_f = -rbm_free_energy(v.to(w.dtype), w, c, b)  # (n_rows,), float64
    return log_f - path.log_z_base - annealed
