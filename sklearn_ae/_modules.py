"""PyTorch modules. They know nothing of training, estimators or data handling."""

import math

import torch
from torch import nn

from ._likelihoods import (
    bernoulli_log_prob_logits,
    elbo,
    gaussian_log_prob,
    kl_bernoulli,
    kl_diagonal_normal_standard_normal,
    rbm_cd_gradients,
    rbm_free_energy,
    rbm_free_energy_gap,
)

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


def linear(n_in, n_out, generator, gain=1.0):
    """A ``nn.Linear`` initialised from ``generator`` (Glorot-uniform weights, zero bias).

    The layer is built without touching the global random state (torch's own initialisation
    draws from it inside ``fork_rng``, which puts it back), then its values are drawn from the
    estimator's own generator.
    """
    with torch.random.fork_rng(devices=[]):
        layer = nn.Linear(n_in, n_out)
    bound = gain * math.sqrt(6.0 / (n_in + n_out))
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.zero_()
    return layer


def mlp(sizes, activation, generator, out_activation=None):
    """A stack of linear layers ``sizes[0] -> ... -> sizes[-1]``.

    ``activation`` follows every layer but the last; ``out_activation`` (a name or None) the last.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        name = out_activation if last else activation
        gain = 2.0 ** 0.5 if name == "relu" else 1.0
        layers.append(linear(n_in, n_out, generator, gain=gain))
        if name is not None and name != "identity":
            layers.append(ACTIVATIONS[name]())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """Deterministic autoencoder: ``encoder`` to the code, mirrored ``decoder`` back.

    ``forward`` returns ``(output, code)``: the decoder's output (a mean, or logits for a
    Bernoulli observation model) and the code, so that losses on either are possible.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_components, activation, generator,
                 code_activation=None):
        super().__init__()
        # the fitted observation noise of a Gaussian likelihood: state, so that a state dict
        # (``save_params`` / ``load_params``) carries what scoring needs with the weights
        self.register_buffer("noise_variance", torch.ones(n_features, dtype=torch.float64))
        hidden = list(hidden_layer_sizes)
        self.encoder = mlp([n_features, *hidden, n_components], activation, generator,
                           out_activation=code_activation)
        self.decoder = mlp([n_components, *reversed(hidden), n_features], activation, generator,
                           out_activation=None)

    def encode(self, x):
        return self.encoder(x)  # (batch, n_components)

    def decode(self, z):
        return self.decoder(z)  # (batch, n_features): mean or logits

    def forward(self, x):
        code = self.encode(x)
        return self.decode(code), code


class ReconstructionLoss(nn.Module):
    """Mean over the batch of the per-sample reconstruction loss, in nats.

    ``"gaussian"``: half the squared error summed over features (the Gaussian negative
    log-likelihood with unit variance, constants dropped). ``"bernoulli"``: the cross-entropy
    summed over features (the exact Bernoulli negative log-likelihood), from logits.
    """

    def __init__(self, likelihood):
        super().__init__()
        self.likelihood = likelihood

    def per_sample(self, output, x):
        if self.likelihood == "bernoulli":
            return nn.functional.binary_cross_entropy_with_logits(output, x, reduction="none").sum(-1)
        return 0.5 * ((x - output) ** 2).sum(-1)

    def forward(self, y_pred, x):
        output, _ = y_pred
        return self.per_sample(output, x).mean()


class SparseReconstructionLoss(ReconstructionLoss):
    """Reconstruction loss plus ``sparsity_weight * sum_j KL(rho || rho_hat_j)``, where
    ``rho_hat_j`` is code unit j's mean activation over the batch."""

    def __init__(self, likelihood, sparsity_target, sparsity_weight):
        super().__init__(likelihood)
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight

    def forward(self, y_pred, x):
        output, code = y_pred
        loss = self.per_sample(output, x).mean()
        if self.sparsity_weight:
            loss = loss + self.sparsity_weight * kl_bernoulli(self.sparsity_target, code.mean(0))
        return loss


class GaussianVAE(nn.Module):
    """Variational autoencoder: Gaussian encoder q(z | x), standard normal prior p(z), and a
    decoder p(x | z) that is Bernoulli (logits) or Gaussian (mean plus a learned per-feature
    variance, bounded below by ``variance_floor``).

    ``forward(x)`` draws one reparameterised z ~ q(z | x) per row and returns
    ``(log_likelihood, kl)``: log p(x | z) and the closed-form KL(q(z | x) || p(z)), one value per
    row. The noise comes from the module's own generator (seeded by ``noise_seed``, created on the
    device of the data); in eval mode every call reuses the same fixed noise, so a validation
    loss is a deterministic function of the weights.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_components, activation, likelihood,
                 generator, noise_seed, score_seed=0, variance_floor=None, init_mean=None,
                 init_variance=None):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        width = hidden[-1] if hidden else n_features
        self.likelihood = likelihood
        self.noise_seed = int(noise_seed)
        self.score_seed = int(score_seed)  # the importance samples of scoring (keyed per row)
        self.trunk = (mlp([n_features, *hidden], activation, generator, out_activation=activation)
                      if hidden else nn.Identity())
        self.mean_head = linear(width, n_components, generator)
        self.log_variance_head = linear(width, n_components, generator, gain=0.1)
        self.decoder = mlp([n_components, *reversed(hidden), n_features], activation, generator)
        if init_mean is not None:
            init_mean = torch.as_tensor(init_mean, dtype=torch.float32)
            with torch.no_grad():
                if likelihood == "bernoulli":
                    p = init_mean.clamp(1e-3, 1 - 1e-3)
                    self.decoder[-1].bias.copy_(torch.log(p) - torch.log1p(-p))
                else:
                    self.decoder[-1].bias.copy_(init_mean)
        if likelihood == "gaussian":
            floor = torch.as_tensor(variance_floor, dtype=torch.float32).expand(n_features).clone()
            start = (torch.ones(n_features) if init_variance is None
                     else torch.as_tensor(init_variance, dtype=torch.float32))
            self.register_buffer("variance_floor", floor)
            self.raw_variance = nn.Parameter(self._raw_for(start))  # starts at init_variance
        self._noise = None

    def _raw_for(self, variance):
        """The ``raw_variance`` whose ``noise_variance()`` is ``variance`` (softplus^-1 of its
        excess over the floor, at least 1e-6)."""
        excess = (variance - self.variance_floor).clamp_min(1e-6)
        return excess + torch.log(-torch.expm1(-excess))

    @torch.no_grad()
    def set_noise_variance(self, variance, where):
        """Set the learned variance of the features ``where`` (a boolean mask) to ``variance``."""
        target = torch.as_tensor(variance, dtype=self.raw_variance.dtype, device=self.raw_variance.device)
        where = torch.as_tensor(where, device=target.device)
        self.raw_variance[where] = self._raw_for(target)[where]

    # ----------------------------------------------------------------- model
    def encode(self, x):
        h = self.trunk(x)
        return self.mean_head(h), self.log_variance_head(h)  # (batch, n_components) each

    def decode(self, z):
        return self.decoder(z)  # (..., n_features): mean or logits

    def noise_variance(self):
        """The decoder's per-feature variance (Gaussian likelihood)."""
        return self.variance_floor + nn.functional.softplus(self.raw_variance)

    def log_likelihood(self, x, output):
        """log p(x | z) from the decoder's output, one value per row (any leading axes)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob_logits(x.expand_as(output), output)
        return gaussian_log_prob(x, output, self.noise_variance())

    # ----------------------------------------------------------------- noise
    def get_extra_state(self):
        """The seeds and the training-noise generator's state, so that a state dict round trip
        (a snapshot, ``save_params`` / ``load_params``) restores them."""
        gen = self._noise
        state = (gen.device.type, gen.get_state()) if gen is not None else self.__dict__.get("_noise_state")
        return {"noise_seed": self.noise_seed, "score_seed": self.score_seed, "generator": state}

    def set_extra_state(self, state):
        self._noise = None
        self.noise_seed, self.score_seed = state["noise_seed"], state["score_seed"]
        if state["generator"] is None:
            self.__dict__.pop("_noise_state", None)
        else:
            self._noise_state = state["generator"]

    def training_generators(self, device):
        """The generators training draws from on ``device`` (a CUDA graph registers them)."""
        return [self._noise_generator(device)]

    def _noise_generator(self, device):
        gen = self._noise
        if gen is None or gen.device != device:
            gen = torch.Generator(device=device)
            state = self.__dict__.pop("_noise_state", None)
            if state is not None and state[0] == device.type:
                gen.set_state(state[1].cpu())  # a state dict loaded onto CUDA moves it there
            else:
                gen.manual_seed(self.noise_seed)
            self._noise = gen
        return gen

    def __getstate__(self):
        state = self.__dict__.copy()
        gen = state.pop("_noise", None)
        if gen is not None:  # a generator's state pickles as a CPU byte tensor, on any device
            state["_noise_state"] = (gen.device.type, gen.get_state())
        state["_noise"] = None
        return state

    def forward(self, x):
        mean, log_variance = self.encode(x)
        if self.training:
            gen = self._noise_generator(x.device)
        else:
            gen = torch.Generator(device=x.device).manual_seed(self.noise_seed)
        eps = torch.randn(mean.shape, generator=gen, device=x.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * log_variance) * eps  # (batch, n_components)
        return (self.log_likelihood(x, self.decode(z)),
                kl_diagonal_normal_standard_normal(mean, log_variance))


class ELBOLoss(nn.Module):
    """Batch mean of the negative (beta-weighted) ELBO: -(log p(x | z) - beta * KL)."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, y_pred, x):
        log_likelihood, kl = y_pred
        return -elbo(log_likelihood, kl, self.beta).mean()


class _FreeEnergyGapFunction(torch.autograd.Function):
    """Per-sample F(v) - F(v_model), with the gradient in closed form (``rbm_cd_gradients``):
    v_model enters as a constant, and the hidden probabilities at both ends of the Gibbs chain
    are already at hand, so the backward pass is three small matmuls instead of autograd's
    graph through the free energies."""

    @staticmethod
    def forward(ctx, weight, hidden_bias, visible_bias, gap, v, h_data, v_model, h_model):
        ctx.save_for_backward(v, h_data, v_model, h_model)
        return gap

    @staticmethod
    def backward(ctx, grad):  # grad: (batch,)
        return (*rbm_cd_gradients(*ctx.saved_tensors, grad), None, None, None, None, None)


class RBM(nn.Module):
    """A Bernoulli restricted Boltzmann machine, trained by CD-k or persistent CD.

    ``weight`` has shape (n_visible, n_hidden). ``forward(v)`` runs the negative phase and
    returns the per-sample free-energy gap F(v) - F(v_model), v_model drawn by the Gibbs chain
    (a constant for the gradient), so that the gradient of its mean is minus the CD-k (or PCD)
    estimate of the log-likelihood gradient. The Gibbs chain draws from its own generator, seeded
    by ``seed`` and kept on the module's device. The persistent chain and the generator's state
    are the module's extra state: a state dict round trip (a snapshot, ``save_params``, a
    pickle) restores them.
    """
    def __init__(self, n_visible, n_hidden, generator, seed, n_gibbs_steps=1, persistent=False):
        super().__init__()
        weight = torch.empty(n_visible, n_hidden).normal_(0.0, 0.01, generator=generator)
        self.weight = nn.Parameter(weight)
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        self.n_gibbs_steps = n_gibbs_steps
        self.persistent = persistent
        self.seed = seed
        self.chain = None  # persistent hidden states, (rows, n_hidden)
        self._generator = None
        self._generator_state = None
        # statistics of the training input (the base-rate model that AIS starts from) and the
        # seeds of scoring: state, so a state dict round trip carries what scoring needs
        self.register_buffer("input_sum", torch.zeros(n_visible, dtype=torch.float64))
        self.register_buffer("input_count", torch.zeros((), dtype=torch.float64))
        self.scoring_seeds = {"ais": 0, "bound": 0}

    def generator(self, device):
        """The Gibbs chain's generator on ``device`` (created or moved there on first use)."""
        gen = self._generator
        if gen is None or gen.device != device:
            gen = torch.Generator(device=device)
            state = self._generator_state
            if state is not None and state[0] == device.type:
                gen.set_state(state[1].cpu())  # a state dict loaded onto CUDA moves it there
            else:
                gen.manual_seed(self.seed)
            self._generator, self._generator_state = gen, None
        return gen

    def get_extra_state(self):
        gen = self._generator
        return {"chain": None if self.chain is None else self.chain.clone(),
                "generator": self._generator_state if gen is None else (gen.device.type, gen.get_state()),
                "scoring_seeds": dict(self.scoring_seeds)}

    def set_extra_state(self, state):
        self.chain = state["chain"]
        self._generator, self._generator_state = None, state["generator"]
        self.scoring_seeds = dict(state["scoring_seeds"])

    def base_rate_logits(self):
        """Log-odds of the smoothed mean of each visible unit over the training input,
        (sum + 1) / (count + 2): the independent-units model AIS starts from."""
        p = (self.input_sum + 1.0) / (self.input_count + 2.0)
        return torch.log(p) - torch.log1p(-p)

    def training_generators(self, device):
        """The generators training draws from on ``device`` (a CUDA graph registers them)."""
        return [self.generator(device)]

    def __getstate__(self):
        state = self.__dict__.copy()
        gen = state.get("_generator")
        if gen is not None:  # a CUDA generator does not pickle; its state does
            state["_generator_state"] = (gen.device.type, gen.get_state())
        state["_generator"] = None
        return state

    def hidden_probs(self, v):
        return torch.sigmoid(v @ self.weight + self.hidden_bias)  # (batch, n_hidden)

    def visible_probs(self, h):
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)  # (batch, n_visible)

    def free_energy(self, v):
        return rbm_free_energy(v, self.weight, self.hidden_bias, self.visible_bias)  # (batch,)

    @staticmethod
    def bernoulli(p, generator):
        # a uniform compared with p in place (1.0 where below p): the same draws as
        # (u < p).to(p.dtype), and on the CPU 2x faster at small batches than that or torch.bernoulli
        return torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device).lt_(p)

    def gibbs(self, h, n_steps, generator):
        """``n_steps`` sweeps h -> v -> h from hidden states ``h``; returns the last (v, h)."""
        v = None
        for _ in range(n_steps):
            v = self.bernoulli(self.visible_probs(h), generator)
            h = self.bernoulli(self.hidden_probs(v), generator)
        return v, h

    def _phases(self, v):
        """The positive and negative phase of one CD-k / PCD update on the batch ``v``.

        Returns the hidden pre-activations and probabilities at the data (``x_data``,
        ``h_data``), the chain's visible sample ``v_model`` and the hidden pre-activations and
        probabilities there (``x_model``, ``h_model``). Called under ``torch.no_grad()``; a
        persistent chain advances only in training mode.
        """
        weight, hidden_bias, visible_bias = self.weight, self.hidden_bias, self.visible_bias
        gen = self.generator(v.device)
        n = v.shape[0]
        x_data = torch.addmm(hidden_bias, v, weight)  # (batch, n_hidden)
        h_data = torch.sigmoid(x_data)
        persistent = self.persistent and self.training
        if persistent:
            chain = self.chain
            if chain is None or chain.shape[0] < n or chain.dtype != v.dtype or chain.device != v.device:
                grown = v.new_zeros(max(n, 0 if chain is None else chain.shape[0]), weight.shape[1])
                if chain is not None:
                    rows = min(len(chain), len(grown))
                    grown[:rows] = chain[:rows].to(grown)
                chain = self.chain = grown
            h = chain[:n]
        else:  # CD-k: the chain starts at the data
            h = self.bernoulli(h_data, gen)
        for step in range(self.n_gibbs_steps):
            v_model = self.bernoulli(torch.sigmoid(torch.addmm(visible_bias, h, weight.T)), gen)
            x_model = torch.addmm(hidden_bias, v_model, weight)
            h_model = torch.sigmoid(x_model)
            if persistent or step < self.n_gibbs_steps - 1:  # CD-k needs no sample at the end
                h = self.bernoulli(h_model, gen)
        if persistent:
            chain[:n] = h
        return x_data, h_data, v_model, x_model, h_model

    def forward(self, v):
        with torch.no_grad():
            x_data, h_data, v_model, x_model, h_model = self._phases(v)
            gap = rbm_free_energy_gap(v, x_data, v_model, x_model, self.visible_bias)
        return _FreeEnergyGapFunction.apply(self.weight, self.hidden_bias, self.visible_bias, gap, v, h_data,
                                            v_model, h_model)

    @torch.no_grad()
    def contrastive_divergence(self, v):
        """One CD-k / PCD negative phase on the batch ``v`` without an autograd graph: returns the
        per-sample free-energy gap (what ``forward`` returns) and the gradients of its batch
        mean with respect to (weight, hidden_bias, visible_bias), as ``backward`` would give
        them."""
        x_data, h_data, v_model, x_model, h_model = self._phases(v)
        gap = rbm_free_energy_gap(v, x_data, v_model, x_model, self.visible_bias)
        return gap, rbm_cd_gradients(v, h_data, v_model, h_model, 1.0 / v.shape[0])


class FreeEnergyGap(nn.Module):
    """CD criterion: the mean over the batch of the module's F(v_data) - F(v_model); its
    gradient is minus the CD-k / PCD estimate of the log-likelihood gradient."""

    def forward(self, y_pred, x):
        return y_pred.mean()
