"""
================================================
Few labels: features learned from unlabeled data
================================================

Labels are often scarce while unlabeled samples are plentiful. A representation learned without
labels, on *all* the training images, can make a classifier trained on a handful of labeled
ones generalise better than the same classifier on raw pixels.

We keep 30 % of the digits as a test set. On the remaining images we fit
:class:`~sklearn.decomposition.PCA`, an :class:`~sklearn_ae.AutoencoderTransformer` and a
:class:`~sklearn_ae.VAETransformer` without labels, then train a logistic regression on the codes
of only ``n_labels`` labeled images (equally many per digit), for several ``n_labels`` and five
random draws of the labeled images each.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_ae import AutoencoderTransformer, VAETransformer

warnings.simplefilter("ignore", ConvergenceWarning)  # short trainings, on purpose

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y)

# %%
# Learn the representations on all the training images, labels unused
# ---------------------------------------------------------------------
n_components = 16
feature_maps = {
    "raw pixels": FunctionTransformer(),
    "PCA": PCA(n_components=n_components, random_state=0),
    "Autoencoder": AutoencoderTransformer(
        n_components=n_components, hidden_layer_sizes=(128, 64), likelihood="bernoulli",
        learning_rate_init=3e-3, max_iter=60, random_state=0),
    "VAE": VAETransformer(
        n_components=n_components, hidden_layer_sizes=(128, 64), likelihood="bernoulli",
        learning_rate_init=3e-3, max_iter=60, random_state=0),
}
features = {}
for name, feature_map in feature_maps.items():
    feature_map.fit(X_pool)  # unsupervised: no y
    features[name] = (feature_map.transform(X_pool), feature_map.transform(X_test))

# %%
# Train a classifier on a few labeled images
# ------------------------------------------
rng = np.random.RandomState(0)
label_counts = [10, 20, 50, 100, 200]
draws = [[np.concatenate([rng.choice(np.flatnonzero(y_pool == d), n // 10, replace=False)
                          for d in range(10)])
          for _ in range(5)] for n in label_counts]

accuracy = {name: np.empty((len(label_counts), 5)) for name in features}
for name, (F_pool, F_test) in features.items():
    for i, subsets in enumerate(draws):
        for j, labeled in enumerate(subsets):
            scaler = StandardScaler().fit(F_pool)  # statistics from the unlabeled pool
            clf = LogisticRegression(C=1.0, max_iter=2000)
            clf.fit(scaler.transform(F_pool[labeled]), y_pool[labeled])
            accuracy[name][i, j] = clf.score(scaler.transform(F_test), y_test)
    print(f"{name:12s}" + "  ".join(f"{n:>3d} labels: {a:.3f}"
                                    for n, a in zip(label_counts, accuracy[name].mean(1))))

# %%
# Test accuracy against the number of labeled images
# --------------------------------------------------
# Mean over the five draws, with the range of the five as a band.
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, acc in accuracy.items():
    line, = ax.plot(label_counts, acc.mean(1), marker="o", label=name)
    ax.fill_between(label_counts, acc.min(1), acc.max(1), color=line.get_color(), alpha=0.15)
ax.set_xscale("log")
ax.set_xticks(label_counts, [str(n) for n in label_counts])
ax.set_xlabel("number of labeled training images (equal per digit)")
ax.set_ylabel("test accuracy")
ax.set_title(f"Logistic regression on {n_components} unsupervised features")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %%
# With ten or twenty labels, the autoencoder's code gives the best classifier here: it was
# trained on all the images, so it has already found directions along which the digits vary, and
# the classifier only has to name them. As labels accumulate, the raw pixels catch up, because
# a linear classifier with enough labels finds those directions itself. PCA's 16 linear
# components bring nothing over the pixels for a linear classifier. The VAE's posterior means do
# worse at this size: its KL term makes it store only as much about each image as pays for
# itself in likelihood, which is the right goal for a density model and not necessarily for a
# classifier. Which representation helps depends on the data; compare them the way this example
# does, on held-out labels.
