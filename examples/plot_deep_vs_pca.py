"""
==================================================
Deep autoencoder against PCA, and a nonlinear NCA
==================================================

:class:`skae.StackedAE` builds a deep autoencoder the way Hinton &
Salakhutdinov (2006) did: each layer is first trained on its own as a small
autoencoder on the codes of the layer below (greedy layer-wise pretraining),
then the stack is unrolled into a deep encoder and decoder and fine-tuned end
to end. This example reproduces, on scikit-learn's bundled 8x8 digits, the
lecture notes' two figures:

* original held-out digits, their deep-autoencoder reconstructions and their
  PCA reconstructions from a code of the same size, in rows;
* 2-D codes of held-out digits from PCA, from scikit-learn's (linear)
  :class:`~sklearn.neighbors.NeighborhoodComponentsAnalysis`, and from a
  StackedAE whose encoder was fine-tuned with the NCA objective
  (``fine_tune='nca'``, Salakhutdinov & Hinton, 2007), with the 1-nearest-
  neighbour accuracy of each on the held-out digits.
"""

import warnings

import matplotlib.pyplot as plt
from matplotlib.ticker import LogFormatter, MaxNLocator
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis

from skae import LatentSpaceDisplay, ReconstructionDisplay, StackedAE

warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)


def held_out_error(model):
    """Average per-image sum of squared errors on the held-out digits."""
    recon = model.inverse_transform(model.transform(X_test))
    return ((X_test - recon) ** 2).sum(axis=1).mean()


def knn_accuracy(model):
    knn = KNeighborsClassifier(n_neighbors=1)
    knn.fit(model.transform(X_train), y_train)
    return knn.score(model.transform(X_test), y_test)


# %%
# A deep autoencoder against PCA at the same code size
# ----------------------------------------------------
# A 64-128-64-8 network: three layers pretrained for 20 epochs each (the
# first as a denoising layer with 20% of pixels masked), then fine-tuned.
k = 8
deep = StackedAE(
    n_components=k,
    hidden_layer_sizes=(128, 64),
    pretrain_max_iter=20,
    noise="masking",
    noise_level=0.2,
    max_iter=150,
    random_state=0,
).fit(X_train)
pca = PCA(n_components=k).fit(X_train)
errors = {"StackedAE": held_out_error(deep), "PCA": held_out_error(pca)}
for name, error in errors.items():
    print(f"{name:<10} held-out error with a {k}-D code: {error:.0f}")

# %%
# Original held-out digits above their reconstructions; under each, its
# squared error (SE, in squared pixel values on the 0-16 scale).
fig = plt.figure(figsize=(10, 4.8))
for subfig, (name, model) in zip(fig.subfigures(2, 1), (("StackedAE", deep), ("PCA", pca))):
    ReconstructionDisplay.from_estimator(
        model, X_test, image_shape=(8, 8), n_images=10, ax=subfig.subplots(2, 10), name=name
    )
    subfig.suptitle(f"{name}, {k}-D code: mean squared error per image {errors[name]:.0f}")
plt.show()

# %%
# The pretraining loss of each layer
# ----------------------------------
# Each layer is trained on its own input (the pixels for layer 1, the codes of
# the layer below for the others), so the curves are in different units: look
# at their shapes, not at their levels.
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
sizes = (X.shape[1], *deep.hidden_layer_sizes, k)
for i, curve in enumerate(deep.pretrain_loss_curves_):
    epochs = range(1, len(curve) + 1)
    ax.plot(epochs, curve, label=f"layer {i + 1}: {sizes[i]} -> {sizes[i + 1]}")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_xlabel("pretraining epoch")
ax.set_ylabel("training loss (the layer's input units)")
ax.set_yscale("log")
ax.yaxis.set_major_formatter(LogFormatter())
ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(1, 0.4)))
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
ax.set_title("Greedy layer-wise pretraining")
plt.show()

# %%
# 2-D codes: PCA, linear NCA and the NCA-fine-tuned StackedAE
# ------------------------------------------------------------
# The StackedAE's encoder (64-32-2) is pretrained without labels, then
# fine-tuned with the NCA objective so that same-class digits are close in
# the code: a nonlinear NCA.
codes = {
    "PCA": PCA(n_components=2).fit(X_train),
    "NCA (linear)": NeighborhoodComponentsAnalysis(n_components=2, random_state=0).fit(
        X_train, y_train
    ),
    "StackedAE(fine_tune='nca')": StackedAE(
        n_components=2,
        hidden_layer_sizes=(32,),
        fine_tune="nca",
        pretrain_max_iter=10,
        max_iter=60,
        random_state=0,
    ).fit(X_train, y_train),
}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), layout="constrained")
for ax, (name, model) in zip(axes, codes.items()):
    accuracy = knn_accuracy(model)
    print(f"{name:<28} 1-NN accuracy on held-out digits: {accuracy:.3f}")
    LatentSpaceDisplay.from_estimator(
        model,
        X_test,
        y_test,
        ax=ax,
        name=f"{name}\n1-NN accuracy {accuracy:.2f}",
        label_name="digit",
        colorbar=ax is axes[-1],
        scatter_kwargs={"s": 8},
    )
fig.suptitle("Held-out digits in a 2-D code")
plt.show()
