"""
===============================================
A variational autoencoder's 2-D latent space
===============================================

:class:`skae.VariationalAE` learns a probabilistic encoder
``q(z|x) = N(mu(x), diag(sigma^2(x)))`` and a decoder ``p(x|z)`` under the
prior ``z ~ N(0, I)``, by maximising the evidence lower bound (ELBO). With a
two-dimensional latent space the whole model can be looked at:

* left, the posterior means ``mu(x)`` (``transform``) of held-out digits,
  coloured by class: the classes form regions although no label was used;
* right, the decoder's mean image at a grid of points over the latent plane,
  placed at the quantiles 5%..95% of the prior so that each cell covers the
  same prior mass (as in Kingma & Welling's figure).

The digits' pixels (0-16) are divided by 16 and modelled with a Bernoulli
decoder (``loss='log_loss'``). The printed scores are per-image ELBOs in
nats (for grey levels the Bernoulli term is the usual cross-entropy rather
than a normalised density, so they rank models on this data rather than
being log-probabilities); the held-out one is close to the training one, and
decoded prior draws (``sample``) have the pixel means of the data.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import LatentSpaceDisplay, VariationalAE

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

vae = VariationalAE(
    n_components=2,
    hidden_layer_sizes=(128,),
    loss="log_loss",
    learning_rate_init=3e-3,
    max_iter=300,
    random_state=0,
).fit(X_train)

print(f"epochs run: {vae.n_iter_}")
print(f"ELBO per image, training: {vae.score(X_train):.2f} nats")
print(f"ELBO per image, held out: {vae.score(X_test):.2f} nats")
samples = vae.sample(1000, random_state=0)
gap = np.abs(samples.mean(axis=0) - X_train.mean(axis=0)).max()
print(f"largest gap between sample and data pixel means: {gap:.3f}")

# %%
# The latent plane and the decoder over it
# ----------------------------------------
n_grid = 12
quantiles = np.linspace(0.05, 0.95, n_grid)
z1, z2 = np.meshgrid(norm.ppf(quantiles), norm.ppf(quantiles[::-1]))
images = vae.inverse_transform(np.column_stack([z1.ravel(), z2.ravel()]))
# Tile the 8x8 images with a one-pixel blank border around each.
tiles = np.pad(images.reshape(n_grid, n_grid, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))
mosaic = tiles.transpose(0, 2, 1, 3).reshape(n_grid * 10, n_grid * 10)

fig, (ax_codes, ax_grid) = plt.subplots(1, 2, figsize=(12, 5.6))
LatentSpaceDisplay.from_estimator(
    vae, X_test, y_test, ax=ax_codes, name="Posterior means of held-out digits",
    label_name="digit",
)
ax_codes.set(xlabel="$z_1$ (code dimension 0)", ylabel="$z_2$ (code dimension 1)")
lim = norm.ppf(0.95)
ax_codes.add_patch(
    plt.Rectangle((-lim, -lim), 2 * lim, 2 * lim, fill=False, ls="--", color="grey")
)
half = 0.45 / (n_grid - 1)  # half a cell, in quantile units
ax_grid.imshow(
    mosaic, cmap="gray_r", extent=(0.05 - half, 0.95 + half, 0.05 - half, 0.95 + half)
)
ax_grid.set(
    title="Decoder mean over the dashed square, left",
    xlabel="prior quantile of $z_1$",
    ylabel="prior quantile of $z_2$",
)
fig.tight_layout()
plt.show()
