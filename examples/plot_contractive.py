"""
===================================================================
Contractive autoencoder: the local tangent directions of digits
===================================================================

A :class:`~skae.ContractiveAE` adds ``contraction_weight * ||J(x)||_F^2``
to the reconstruction loss, where ``J(x)`` is the Jacobian of the code with
respect to the input. The code then changes only along the few directions in
which the data actually vary near ``x`` (the tangent space of the data
manifold) and ignores the others.

:meth:`~skae.ContractiveAE.jacobian` returns the per-sample Jacobians. Their
singular values measure how strongly the code responds to each input
direction, and the right singular vectors with large singular values are the
local tangent directions. Here two contractive autoencoders are compared with
the same network trained without the penalty (``contraction_weight=0``, which
is exactly :class:`~skae.AutoencoderTransformer`) on held-out digits.
"""

# %%
# Fit the models
# --------------
# Same architecture, seed and epochs; a bounded (tanh) code, so the penalty
# cannot be met by merely shrinking the code.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import ContractiveAE

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

params = dict(
    n_components=32,
    hidden_layer_sizes=(128,),
    code_activation="tanh",
    max_iter=60,
    random_state=0,
)
models = {
    f"lambda={weight:g}": ContractiveAE(contraction_weight=weight, **params)
    for weight in (0.0, 1.0, 3.0)
}
for model in models.values():
    model.fit(X_train)

# %%
# Singular values of the Jacobian
# -------------------------------
# For every held-out digit, the 32 singular values of its 32 x 64 Jacobian
# (in the units of the pixels), sorted; the curves are medians over the test
# set. The contractive codes are less sensitive overall, and with the larger
# weight the spectrum falls off a cliff after about 20 directions: the code
# responds to few directions around each digit.
#
# Where do the leading tangent directions point? The table gives the share of
# their energy inside the span of the training set's first 20 principal
# components (a random direction would have 20/64 = 0.31). The plain
# autoencoder's leading directions are hardly better than random; the
# contractive ones lie mostly in the directions the digits vary along, with
# ``lambda=1`` at no cost in reconstruction error.
pca = PCA(n_components=20).fit(X_train)
spectra, tangents = {}, {}
print(f"{'model':<11}{'mean ||J||_F':>13}{'in PCA-20':>11}{'error':>8}")
for name, model in models.items():
    J = model.jacobian(X_test)
    _, s, vt = np.linalg.svd(J, full_matrices=False)
    spectra[name], tangents[name] = s, vt[:, :4]
    frobenius = np.sqrt((J**2).sum(axis=(1, 2))).mean()
    in_pca = ((tangents[name] @ pca.components_.T) ** 2).sum(axis=-1).mean()
    error = -model.score(X_test)
    print(f"{name:<11}{frobenius:>13.3f}{in_pca:>11.2f}{error:>8.1f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for name, s in spectra.items():
    idx = np.arange(1, s.shape[1] + 1)
    axes[0].semilogy(idx, np.median(s, axis=0), marker=".", label=name)
    axes[1].plot(idx, np.median(s / s[:, :1], axis=0), marker=".", label=name)
axes[0].set(
    xlabel="singular value index",
    ylabel="singular value (code units per pixel unit)",
    title="Median singular values of J(x)",
)
axes[1].set(
    xlabel="singular value index",
    ylabel="relative to the largest (no unit)",
    title="Normalised by the largest",
)
axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
plt.show()

# %%
# Tangent directions
# ------------------
# The three leading right singular vectors of the Jacobian at a few test
# digits, as 8 x 8 images (red and blue are opposite signs): the changes of
# the input the code is most sensitive to.
rows = [0, 1, 2]
fig, axes = plt.subplots(len(rows), 10, figsize=(12, 4))
for r, i in enumerate(rows):
    axes[r, 0].imshow(X_test[i].reshape(8, 8), cmap="gray_r")
    for m, name in enumerate(models):
        for t in range(3):
            ax = axes[r, 1 + 3 * m + t]
            v = tangents[name][i, t].reshape(8, 8)
            lim = np.abs(v).max()
            ax.imshow(v, cmap="RdBu", vmin=-lim, vmax=lim)
            if r == 0:
                ax.set_title(f"{name}\n#{t + 1}", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_title("digit", fontsize=8)
fig.suptitle("Leading tangent directions (red and blue: opposite signs, each on its own scale)")
fig.tight_layout()
plt.show()
