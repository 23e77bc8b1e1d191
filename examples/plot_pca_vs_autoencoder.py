"""
=====================================
PCA against an autoencoder on digits
=====================================

:class:`skae.AutoencoderTransformer` is a drop-in, nonlinear replacement for
:class:`~sklearn.decomposition.PCA`. This example fits both with 2- and
16-dimensional codes on scikit-learn's bundled 8x8 digits, compares held-out
reconstruction error and k-nearest-neighbour accuracy in the code space, and
shows the 2-D codes and a few reconstructions.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def held_out_error(model):
    recon = model.inverse_transform(model.transform(X_test))
    return ((X_test - recon) ** 2).sum(axis=1).mean()


def knn_accuracy(model):
    knn = KNeighborsClassifier(n_neighbors=3)
    knn.fit(model.transform(X_train), y_train)
    return knn.score(model.transform(X_test), y_test)


# %%
# Fit PCA and the autoencoder at two code widths
# ----------------------------------------------
# The autoencoder's only change from PCA is the class name and a few
# training settings; early stopping holds out 10% of the training data.
models = {}
for k in (2, 16):
    pca = PCA(n_components=k).fit(X_train)
    ae = AutoencoderTransformer(
        n_components=k,
        hidden_layer_sizes=(128, 64),
        early_stopping=True,
        n_iter_no_change=20,
        max_iter=300,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X_train)
    models[k] = {"PCA": pca, "autoencoder": ae}
    for name, model in models[k].items():
        print(
            f"k={k:>2} {name:<12} held-out error {held_out_error(model):7.1f}   "
            f"3-NN accuracy {knn_accuracy(model):.3f}"
        )

# %%
# The 2-D codes
# -------------
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, (name, model) in zip(axes, models[2].items()):
    codes = model.transform(X_test)
    scatter = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=10)
    ax.set_title(f"{name}: error {held_out_error(model):.0f}, 3-NN {knn_accuracy(model):.2f}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(scatter, ax=axes, ticks=np.arange(10), label="digit")
fig.suptitle("Held-out digits in a 2-D code")

# %%
# Reconstructions from 16 numbers
# -------------------------------
# Rows: original test digits, the autoencoder's reconstruction and PCA's.
n = 8
fig, axes = plt.subplots(3, n, figsize=(n, 3.3))
rows = [
    ("original", X_test[:n]),
    (
        "autoencoder",
        models[16]["autoencoder"].inverse_transform(
            models[16]["autoencoder"].transform(X_test[:n])
        ),
    ),
    ("PCA", models[16]["PCA"].inverse_transform(models[16]["PCA"].transform(X_test[:n]))),
]
for r, (label, images) in enumerate(rows):
    for c in range(n):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
fig.suptitle("16-dimensional codes: reconstructions of held-out digits")
plt.show()
