"""
==================================
Denoising handwritten digits
==================================

A denoising autoencoder (:class:`skae.DenoisingAE`) is trained to rebuild
each clean digit from a copy whose pixels were knocked out at random
("masking" noise): during training, every pixel of every batch is set to 0
with probability ``noise_level``, and the loss compares the reconstruction
with the clean image. At prediction time nothing is corrupted, so
:meth:`~skae.DenoisingAE.denoise` (the same as
``inverse_transform(transform(X))``) turns a damaged digit into the model's
best guess of the clean one.

We train the one-layer model of Vincent et al. (2008): sigmoid code units
and a cross-entropy loss on pixels scaled to [0, 1] (here with separate
decoder weights, which show the effect on the filters most clearly), with
0% (a plain autoencoder), 25% and 50% masking, everything else equal. We then

1. compare the reconstructions of corrupted test digits, and
2. look at the learned first-layer filters (each code unit's weights shown as
   an 8x8 image). Without noise the filters are scattered, pixel-level
   detectors; with noise they spread into smoother stroke- and blob-like
   patterns, because a unit can only rely on pixels together, never on one
   pixel that may be missing.
"""

# %%
# Data and models
# ---------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import DenoisingAE

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1] for the cross-entropy loss
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# Every model trains for the same 300 epochs (the stopping rule is switched
# off with tol=0 and n_iter_no_change=max_iter), so scikit-learn's warning
# that training stopped at max_iter is expected; we silence it.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

levels = [0.0, 0.25, 0.5]
models = {}
for level in levels:
    models[level] = DenoisingAE(
        n_components=64,
        hidden_layer_sizes=(),
        code_activation="logistic",
        loss="log_loss",
        noise="masking",
        noise_level=level,
        learning_rate_init=0.01,
        max_iter=300,
        tol=0.0,
        n_iter_no_change=300,
        random_state=0,
        device="cpu",
    ).fit(X_train)

# %%
# How well does each model clean corrupted test digits?
# -----------------------------------------------------
# We corrupt the test digits with the same masking noise, at the rate each
# denoiser was trained for, and measure the squared error (in pixels scaled
# to [0, 1]) between the model's output and the clean digits.
rng = np.random.RandomState(42)
corrupted = {
    level: np.where(rng.uniform(size=X_test.shape) < level, 0.0, X_test)
    for level in levels[1:]
}


def error(X_rec):
    return ((X_rec - X_test) ** 2).sum(axis=1).mean()


print("test masking | corrupted input | plain AE (0%) | DAE (same rate)")
for level, X_noisy in corrupted.items():
    print(
        f"{level:12.0%} | {error(X_noisy):15.2f} | "
        f"{error(models[0.0].denoise(X_noisy)):13.2f} | "
        f"{error(models[level].denoise(X_noisy)):15.2f}"
    )

# %%
# Clean, corrupted and denoised digits
# ------------------------------------
# For each corruption rate: the clean digits, the corrupted input, the plain
# autoencoder's reconstruction and the denoiser's.
n_show = 10
rows = [("clean", X_test)]
for level, X_noisy in corrupted.items():
    rows += [
        (f"{level:.0%} masked", X_noisy),
        ("plain AE", models[0.0].denoise(X_noisy)),
        (f"DAE {level:.0%}", models[level].denoise(X_noisy)),
    ]
fig, axes = plt.subplots(len(rows), n_show, figsize=(n_show * 0.9, len(rows) * 1.0))
for (label, images), ax_row in zip(rows, axes):
    for i, ax in enumerate(ax_row):
        ax.imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
fig.suptitle("Reconstructions of corrupted test digits (pixels scaled to [0, 1])")
fig.tight_layout()
plt.show()

# %%
# Learned filters for 0%, 25% and 50% corruption
# -----------------------------------------------
# The rows of the first (here the only) encoder weight matrix, one 8x8 image
# per code unit, each on its own symmetric colour scale. The same 36 units
# are shown for every model.
n_filters = 36
fig, axes = plt.subplots(1, len(levels), figsize=(12, 4.4))
for ax, level in zip(axes, levels):
    W = models[level].module_.encoder_layers()[0].weight.detach().numpy()
    tiles = np.ones((6 * 9 - 1, 6 * 9 - 1)) * np.nan
    for k in range(n_filters):
        w = W[k].reshape(8, 8)
        r, c = divmod(k, 6)
        tiles[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = w / np.abs(w).max()
    ax.imshow(tiles, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(f"{level:.0%} masking")
    ax.axis("off")
fig.suptitle(
    "First-layer filters become more stroke-like as corruption grows\n"
    "(each filter scaled to its largest absolute weight; red and blue: opposite signs)"
)
fig.tight_layout()
plt.show()

# %%
# A number for "stroke-like": how strongly each filter weight correlates with
# its horizontal and vertical neighbours (over all 64 filters). Isolated
# single-pixel detectors give a value near 0; smooth strokes and blobs a
# larger one.


def neighbour_correlation(W):
    F = W.reshape(-1, 8, 8)
    a = np.concatenate([F[:, :, :-1].ravel(), F[:, :-1, :].ravel()])
    b = np.concatenate([F[:, :, 1:].ravel(), F[:, 1:, :].ravel()])
    return np.corrcoef(a, b)[0, 1]


for level in levels:
    W = models[level].module_.encoder_layers()[0].weight.detach().numpy()
    print(f"{level:.0%} masking: neighbour correlation {neighbour_correlation(W):.2f}")
