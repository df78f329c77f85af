"""
================================================================
Sparse codes: activation histograms with and without the penalty
================================================================

A :class:`~sklearn_ae.SparseAutoencoder` has more code units than the digits have pixels (100
versus 64: an *overcomplete* code) and sigmoid activations in (0, 1). Without a penalty nothing
stops it from spreading every image over all units. Its KL sparsity penalty pulls the mean
activation of each unit towards ``sparsity_target`` (here 0.05), so that each image switches on
only a few units. We train the same network with ``sparsity_weight=0`` (no penalty) and with the
default ``sparsity_weight=3`` and compare the distribution of the code activations on held-out
images.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_ae import SparseAutoencoder

warnings.simplefilter("ignore", ConvergenceWarning)  # short trainings, on purpose

X, _ = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

codes, models = {}, {}
for weight in (0.0, 3.0):
    model = SparseAutoencoder(n_components=100, sparsity_target=0.05, sparsity_weight=weight,
                              likelihood="bernoulli", learning_rate_init=1e-2, max_iter=100,
                              random_state=0).fit(X_train)
    models[weight] = model
    codes[weight] = model.transform(X_test)  # (n_test, 100), values in (0, 1)
    Z = codes[weight]
    print(f"sparsity_weight={weight}: mean activation {Z.mean():.3f}, "
          f"activations below 0.1: {np.mean(Z < 0.1):.0%}, "
          f"units above 0.3 per image: {np.mean((Z > 0.3).sum(1)):.1f}, "
          f"held-out MSE {np.mean((model.inverse_transform(Z) - X_test) ** 2):.4f}")

# %%
# Histograms of the code activations
# ----------------------------------
# Left: every activation of every held-out image. Right: the mean activation of each unit over the
# held-out images, the quantity the penalty steers towards ``sparsity_target``.
fig, (ax_all, ax_unit) = plt.subplots(1, 2, figsize=(11, 4))
bins = np.linspace(0, 1, 41)
for weight, colour in ((0.0, "tab:grey"), (3.0, "tab:blue")):
    label = "no penalty" if weight == 0 else f"sparsity_weight={weight:g}"
    ax_all.hist(codes[weight].ravel(), bins=bins, color=colour, alpha=0.6, label=label,
                density=True)
    ax_unit.hist(codes[weight].mean(0), bins=bins, color=colour, alpha=0.6, label=label)
ax_all.set_yscale("log")
ax_all.set_xlabel("activation of a code unit")
ax_all.set_ylabel("density (log scale)")
ax_all.set_title("All activations, held-out images")
ax_unit.axvline(0.05, color="k", ls="--", lw=1, label="sparsity_target")
ax_unit.set_xlabel("mean activation of a unit")
ax_unit.set_ylabel("number of units")
ax_unit.set_title("Mean activation per unit")
ax_unit.legend()
fig.tight_layout()
plt.show()

# %%
# What the units respond to
# -------------------------
# Decoding a code with a single active unit shows the image that unit adds to a reconstruction.
# Without the penalty each unit changes pixels all over the image, and an image is a dense mixture
# of many units. With it, a unit draws a more localised stroke, and an image is made of a few of
# them: the printout above shows about two units above 0.3 per image against some seventy without
# the penalty. The sparse code reconstructs less precisely (a larger held-out error) for the
# same number of units; ``sparsity_weight`` sets that trade-off.
fig, axes = plt.subplots(2, 12, figsize=(11, 2.3))
for row, weight in enumerate((0.0, 3.0)):
    model = models[weight]
    base = model.inverse_transform(np.zeros((1, 100)))
    strongest = np.argsort(codes[weight].mean(0))[::-1][:12]
    one_hot = np.eye(100)[strongest]
    parts = model.inverse_transform(one_hot) - base
    for ax, part in zip(axes[row], parts):
        limit = np.abs(part).max()
        ax.imshow(part.reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel("no penalty" if weight == 0 else "sparse", rotation=0,
                            ha="right", va="center")
fig.suptitle("Decoder response to one active unit (12 most used units), minus the all-off image")
fig.tight_layout()
plt.show()
