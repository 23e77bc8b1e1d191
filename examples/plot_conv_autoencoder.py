"""
===========================================
A convolutional autoencoder against PCA
===========================================

``encoder='conv'`` swaps the fully connected network of
:class:`skae.AutoencoderTransformer` for a convolutional stack: stride-2
convolutions down to a linear code, transposed convolutions back up. X stays a
2-D array, one flattened image per row; ``input_shape`` says how to fold a row
into an image. This example compresses scikit-learn's 8x8 digits to 8 numbers
with PCA, a fully connected autoencoder and a convolutional one, and compares
held-out reconstruction error and a few reconstructions.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
k = 8

# %%
# Three models with an 8-number code
# ----------------------------------
# The convolutional stack: 1x8x8 -> 16x4x4 -> 32x2x2 -> 8 numbers, and back.
models = {
    "PCA": PCA(n_components=k),
    "MLP autoencoder": AutoencoderTransformer(
        n_components=k, hidden_layer_sizes=(64,), max_iter=40, batch_size=64,
        learning_rate_init=3e-3, random_state=0, device="cpu",
    ),
    "conv autoencoder": AutoencoderTransformer(
        n_components=k, encoder="conv", input_shape=(1, 8, 8), conv_channels=(16, 32),
        max_iter=20, batch_size=64, learning_rate_init=3e-3, random_state=0, device="cpu",
    ),
}
errors, recons = {}, {}
for name, model in models.items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    recons[name] = model.inverse_transform(model.transform(X_test))
    errors[name] = ((X_test - recons[name]) ** 2).sum(axis=1).mean()
    print(f"{name:>17}: held-out squared error per image {errors[name]:7.1f}")

# %%
# Reconstructions
# ---------------
# Top row: held-out digits; then each model's reconstruction from 8 numbers.
n_show = 8
rows = ["original", *models]
fig, axes = plt.subplots(len(rows), n_show, figsize=(n_show, len(rows) * 1.1))
for r, name in enumerate(rows):
    images = X_test if name == "original" else recons[name]
    for c in range(n_show):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    label = name if name == "original" else f"{name}\n({errors[name]:.0f})"
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
fig.suptitle("8x8 digits from an 8-number code (held-out squared error)")
plt.tight_layout()
plt.show()
