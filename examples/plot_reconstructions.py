"""
==================================
Reconstructions of held-out digits
==================================

Each model squeezes a held-out image through a code of ``n_components = 8`` numbers and decodes
it back with ``inverse_transform(transform(X))``. :class:`~sklearn.decomposition.PCA` keeps the
best *linear* 8-dimensional summary; the :class:`~sklearn_ae.AutoencoderTransformer` and the
:class:`~sklearn_ae.VAETransformer` learn non-linear ones. The images below are test images none
of the models was trained on, and the numbers are the mean squared error per pixel over the whole
test set (pixels in [0, 1]).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_ae import AutoencoderTransformer, VAETransformer

warnings.simplefilter("ignore", ConvergenceWarning)  # short trainings, on purpose

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y)

models = {
    "PCA": PCA(n_components=8, random_state=0),
    "Autoencoder": AutoencoderTransformer(
        n_components=8, hidden_layer_sizes=(128, 64), likelihood="bernoulli",
        learning_rate_init=3e-3, max_iter=80, random_state=0),
    "VAE": VAETransformer(
        n_components=8, hidden_layer_sizes=(128, 64), likelihood="bernoulli",
        learning_rate_init=3e-3, max_iter=80, random_state=0),
}

reconstructions, errors = {}, {}
for name, model in models.items():
    model.fit(X_train)
    X_hat = model.inverse_transform(model.transform(X_test))
    reconstructions[name] = X_hat
    errors[name] = np.mean((X_hat - X_test) ** 2)
    print(f"{name:12s} held-out MSE per pixel: {errors[name]:.4f}")

# %%
# One test image of each digit, then each model's reconstruction of it
# ---------------------------------------------------------------------
shown = [np.flatnonzero(y_test == digit)[0] for digit in range(10)]
rows = {"held-out image": X_test, **reconstructions}

fig, axes = plt.subplots(len(rows), len(shown), figsize=(10, 4.6))
for r, (label, images) in enumerate(rows.items()):
    for c, i in enumerate(shown):
        ax = axes[r, c]
        ax.imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    title = label if label not in errors else f"{label}\nMSE {errors[label]:.4f}"
    axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=10)
fig.suptitle("Held-out digits through an 8-number code")
fig.tight_layout()
plt.show()

# %%
# At the same code size the non-linear autoencoder reconstructs held-out digits with about half
# the error of PCA. The VAE pays for its smooth, sampleable latent space (its KL term keeps the
# codes close to the standard normal prior, so they carry less detail) with blurrier
# reconstructions: it is the model to use for densities and samples, not for the sharpest
# reconstruction. The autoencoder's decoder outputs Bernoulli probabilities, so its
# reconstructions stay within [0, 1]; PCA's need not:
print(f"PCA reconstructions range from {reconstructions['PCA'].min():.2f} "
      f"to {reconstructions['PCA'].max():.2f}")
