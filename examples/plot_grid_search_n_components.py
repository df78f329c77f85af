"""
======================================================================
Choosing ``n_components`` by held-out log-likelihood with GridSearchCV
======================================================================

``score(X)`` of a density model is the mean log-likelihood of X, so
:class:`~sklearn.model_selection.GridSearchCV` with its default scorer picks the number of
components that best predicts *held-out* data, with no labels, as it does for
:class:`~sklearn.decomposition.PCA` and :class:`~sklearn.mixture.GaussianMixture`. Here it chooses
the latent dimension of a :class:`~sklearn_ae.VAETransformer` and the number of components of
probabilistic PCA on the same data, so their scores can be set side by side.

A deterministic :class:`~sklearn_ae.AutoencoderTransformer` is shown as a warning: its
``score_samples`` is the likelihood of x given its *own* reconstruction, which usually improves as
the code widens, so it does not choose ``n_components`` reliably (see :ref:`score_samples`).
"""

# %%
# One continuous representation for all models
# ---------------------------------------------
# Log-likelihoods compare only on the same data in the same units. The digits' pixels are
# integers from 0 to 16; adding uniform noise in [0, 1) (*dequantisation*) makes them continuous,
# so that a density is a fair model of them, and dividing by 17 puts them in [0, 1). Every
# model below sees exactly this representation.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_ae import AutoencoderTransformer, VAETransformer

warnings.simplefilter("ignore", ConvergenceWarning)  # short trainings, on purpose

X, _ = load_digits(return_X_y=True)
X = (X + np.random.RandomState(0).uniform(size=X.shape)) / 17.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

# %%
# Three grid searches, three-fold cross-validation on the training images
# -----------------------------------------------------------------------
grid = [2, 4, 8, 16]
common = dict(hidden_layer_sizes=(64,), learning_rate_init=3e-3, max_iter=40, random_state=0)
searches = {
    "PCA": GridSearchCV(PCA(random_state=0), {"n_components": grid + [32, 48, 63]}, cv=3),
    # 100 importance samples per image are enough to rank the candidates (the default is more)
    "VAE": GridSearchCV(VAETransformer(likelihood="gaussian", n_importance_samples=100, **common),
                        {"n_components": grid}, cv=3),
    "Autoencoder (reconstruction likelihood)": GridSearchCV(
        AutoencoderTransformer(likelihood="gaussian", **common), {"n_components": grid}, cv=3),
}
for name, search in searches.items():
    search.fit(X_train)
    print(f"{name}: chose n_components={search.best_params_['n_components']}, "
          f"cross-validated log-likelihood {search.best_score_:.1f} nats per image, "
          f"on the test images {search.score(X_test):.1f}")

# %%
# Cross-validated log-likelihood against ``n_components``
# -------------------------------------------------------
# Left: the two density models, whose scores are comparable. Right: the autoencoder's
# reconstruction likelihood, in the same units but not comparable with them.
fig, (ax_density, ax_ae) = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, names in ((ax_density, ["PCA", "VAE"]),
                  (ax_ae, ["Autoencoder (reconstruction likelihood)"])):
    for name in names:
        result = searches[name].cv_results_
        k = np.asarray(result["param_n_components"], dtype=int)
        line, = ax.plot(k, result["mean_test_score"], marker="o", label=name)
        ax.fill_between(k, result["mean_test_score"] - result["std_test_score"],
                        result["mean_test_score"] + result["std_test_score"],
                        color=line.get_color(), alpha=0.2)
        best = searches[name].best_params_["n_components"]
        ax.plot([best], [searches[name].best_score_], marker="*", ms=16, color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n_components")
    ax.set_ylabel("held-out log-likelihood (nats per image)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
ax_density.set_title("Density models: GridSearchCV's choice (star)")
ax_ae.set_title("Autoencoder: prefers the widest code")
fig.tight_layout()
plt.show()

# %%
# Probabilistic PCA's log-likelihood keeps rising up to 63 components: with this many images, a
# Gaussian with a full covariance matrix (PCA's noise term covers the last direction) is a strong
# model of the dequantised digits. The VAE's curve has a maximum, at a small latent dimension,
# and cross-validation finds it without a label; on this small data set its best density stays
# below the full Gaussian's, a comparison that is meaningful because both are densities of the
# same data. The autoencoder's reconstruction likelihood, by contrast, rises with every extra
# component here and even exceeds both densities, which shows that it is not a density: used as a
# selection criterion it picks the widest code in the grid.
