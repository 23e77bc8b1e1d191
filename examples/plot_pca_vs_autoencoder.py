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
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer, LatentSpaceDisplay, ReconstructionDisplay

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
# :class:`~skae.LatentSpaceDisplay` works with any transformer, PCA included;
# one colour bar serves both panels.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
for ax, (name, model) in zip(axes, models[2].items()):
    LatentSpaceDisplay.from_estimator(
        model,
        X_test,
        y_test,
        ax=ax,
        name=f"{name}: error {held_out_error(model):.0f}, 3-NN {knn_accuracy(model):.2f}",
        label_name="digit",
        colorbar=ax is axes[-1],
    )
fig.suptitle("Held-out digits in a 2-D code (error: squared error per image)")
plt.show()

# %%
# Reconstructions from 16 numbers
# -------------------------------
# Original test digits above their reconstructions by the autoencoder and by
# PCA; under each reconstruction its squared error (SE, in squared pixel
# values on the 0-16 scale).
fig = plt.figure(figsize=(8.5, 4.6))
for subfig, (name, model) in zip(fig.subfigures(2, 1), models[16].items()):
    axes = subfig.subplots(2, 8)
    ReconstructionDisplay.from_estimator(model, X_test, image_shape=(8, 8), ax=axes, name=name)
    subfig.suptitle(f"{name}, 16-dimensional code")
plt.show()
