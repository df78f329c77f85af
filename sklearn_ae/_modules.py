"""PyTorch modules. They know nothing of training, estimators or data handling."""

import math

import torch
from torch import nn

from ._likelihoods import kl_bernoulli

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


def linear(n_in, n_out, generator, gain=1.0):
    """A ``nn.Linear`` initialised from ``generator`` (Glorot-uniform weights, zero bias).

    The layer is built without touching the global random state: ``skip_init`` allocates it
    uninitialised and the values are drawn from the estimator's own generator.
    """
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
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
