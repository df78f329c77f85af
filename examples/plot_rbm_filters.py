"""
=============================
RBM filters and Gibbs samples
=============================

A restricted Boltzmann machine is a generative model of binary vectors: hidden units are
switched on by the visible units through a weight matrix, and the visible units are switched on by
the hidden ones through the same weights. :class:`~sklearn_ae.BernoulliRBMStack` with an empty
``hidden_layer_sizes`` is a single RBM, trained here by persistent contrastive divergence on
black-and-white digits.

Two pictures show what it learned: the *filters* (each hidden unit's weights to the 64 pixels,
``coefs_[0]`` of shape ``(n_visible, n_hidden)``) and *samples*, obtained by running Gibbs chains
that alternately sample the hidden and the visible units.
"""

# %%
# Fit an RBM to binarised digits
# ------------------------------
# A Bernoulli model needs values in [0, 1]; here the grey levels are binarised at half intensity.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import Binarizer

from sklearn_ae import BernoulliRBMStack

warnings.simplefilter("ignore", ConvergenceWarning)  # a short training, on purpose

X, _ = load_digits(return_X_y=True)
X = Binarizer(threshold=8).fit_transform(X)  # pixel counts 0..16 -> 0/1
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

rbm = BernoulliRBMStack(n_components=100, learning_rate=0.05, batch_size=20, max_iter=20,
                        n_gibbs_steps=1, persistent=True, random_state=0).fit(X_train)
print(f"pseudo-log-likelihood per image, training: {rbm.pseudo_likelihood(X_train).mean():.2f}, "
      f"held out: {rbm.pseudo_likelihood(X_test).mean():.2f}")

# %%
# The filters
# -----------
# Each square is one hidden unit's weights to the 8x8 pixels (red: the unit turns the pixel on,
# blue: off). Shown are the 40 units with the largest weights.
W = rbm.coefs_[0]  # (n_visible, n_hidden) = (64, 100)
order = np.argsort(np.linalg.norm(W, axis=0))[::-1][:40]
fig, axes = plt.subplots(4, 10, figsize=(8, 3.6))
for ax, unit in zip(axes.ravel(), order):
    limit = np.abs(W[:, unit]).max()
    ax.imshow(W[:, unit].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("RBM filters: weights of 40 hidden units to the 8x8 pixels")
fig.tight_layout()
plt.show()

# %%
# Gibbs samples
# -------------
# ``sample`` starts each chain from random pixels drawn with the training data's per-pixel
# frequencies and runs ``n_steps`` Gibbs sweeps. With the same ``random_state``, the same ten
# chains are shown after 1, 20 and 300 sweeps. A single sweep already turns the unstructured
# starting noise into strokes; the longer chains wander among digit-like shapes, cruder than the
# real digits of the last row, as expected from a small RBM trained for a few seconds.
sweeps = [1, 20, 300]
fig, axes = plt.subplots(len(sweeps) + 1, 10, figsize=(8, 3.7))
for row, n_steps in enumerate(sweeps):
    samples = rbm.sample(n_samples=10, random_state=0, n_steps=n_steps)
    for ax, image in zip(axes[row], samples):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[row, 0].set_ylabel(f"{n_steps} sweep{'s' if n_steps > 1 else ''}", rotation=0,
                            ha="right", va="center")
for ax, image in zip(axes[-1], X_test[:10]):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
axes[-1, 0].set_ylabel("real (test)", rotation=0, ha="right", va="center")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Gibbs chains of the RBM, and real binarised digits for comparison")
fig.tight_layout()
plt.show()
