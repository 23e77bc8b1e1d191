"""
=====================================================
Semantic hashing: retrieving digits by binary address
=====================================================

:class:`skae.SemanticHashing` is an autoencoder whose code is a short string
of bits: training adds noise before the code layer's sigmoid, so the network
learns to saturate it, and ``transform`` returns the thresholded bits. Similar
digits get nearby addresses, so retrieval needs no search:
:meth:`~skae.SemanticHashing.radius_neighbors` looks up the few addresses
within a small Hamming distance of the query in a hash table, and
:meth:`~skae.SemanticHashing.kneighbors` ranks the database by Hamming
distance on packed bits.

Reconstruction alone gives codes about as good for retrieval as ITQ's. The
neighbourhood term (``neighbor_weight``) adds what retrieval needs: within
each batch, the codes of rows that are nearest neighbours in input space are
pulled together (and the others pushed apart), with no labels. Batches of 500
give every row enough neighbours to learn from.

We index 1,347 digits (scikit-learn's 8x8 images), query with the 450 others,
and

1. show a few queries and what ``kneighbors`` retrieves for them, and
2. compare the precision of the 10 nearest (relevant = same digit) with that
   of iterative quantisation (ITQ: PCA, then the rotation that makes the signs
   lose least; Gong & Lazebnik 2011) at 8, 16 and 32 bits.
"""

# %%
# Data and model
# --------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import SemanticHashing

X, y = load_digits(return_X_y=True)
X_db, X_q, y_db, y_q = train_test_split(X, y, test_size=0.25, random_state=0)
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def semantic_hashing(bits):
    return SemanticHashing(
        n_components=bits,
        hidden_layer_sizes=(128,),
        max_iter=40,
        neighbor_weight=1000,
        batch_size=500,
        random_state=0,
        device="cpu",
    ).fit(X_db)


model = semantic_hashing(16)
codes = model.transform(X_q)
print("codes:", codes.shape, codes.dtype, "- first query:", "".join(map(str, codes[0])))
print("fraction of ones per bit:", np.round(model.transform(X_db).mean(axis=0), 2))

# %%
# Queries and what they retrieve
# ------------------------------
# Each row: a query (left), then its 8 nearest database digits by Hamming
# distance (the distance above each). Ties are broken by database index.
dist, ind = model.kneighbors(X_q[:6], n_neighbors=8)
fig, axes = plt.subplots(6, 9, figsize=(7, 5.5))
for row in range(6):
    axes[row, 0].imshow(X_q[row].reshape(8, 8), cmap="gray_r")
    axes[row, 0].set_title("query", fontsize=8)
    for col in range(8):
        axes[row, col + 1].imshow(X_db[ind[row, col]].reshape(8, 8), cmap="gray_r")
        axes[row, col + 1].set_title(f"d={dist[row, col]}", fontsize=8)
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("16-bit semantic hashing: queries and their nearest codes")
plt.tight_layout()

# %%
# No search at all: the Hamming ball
# ----------------------------------
# ``radius_neighbors`` enumerates the 1 + 16 + 120 = 137 addresses within
# distance 2 of each query and looks them up: the cost per query does not
# depend on the size of the database.
dist_r, ind_r = model.radius_neighbors(X_q, radius=2)
found = np.array([len(i) for i in ind_r])
precision = np.mean([np.mean(y_db[i] == y) for i, y in zip(ind_r, y_q) if len(i)])
print(
    f"radius 2: {np.mean(found > 0):.0%} of the queries find something, "
    f"{np.median(found):.0f} digits each (median), {precision:.0%} of them right"
)

# %%
# Precision against ITQ
# ---------------------


def itq(bits, n_iter=50):
    pca = PCA(bits, random_state=0).fit(X_db)
    V = pca.transform(X_db)
    R, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((bits, bits)))
    for _ in range(n_iter):
        U, _, Wt = np.linalg.svd(V.T @ np.where(V @ R >= 0, 1.0, -1.0))
        R = U @ Wt
    return (V @ R > 0).astype(np.uint8), (pca.transform(X_q) @ R > 0).astype(np.uint8)


def precision_at_10(C_db, C_q):
    """Rank by Hamming distance, ties at random (a seeded permutation)."""
    D = (C_q[:, None, :] != C_db[None, :, :]).sum(axis=2)
    noise = np.random.default_rng(0).random(D.shape)
    order = np.lexsort((noise, D), axis=1)[:, :10]
    return np.mean(y_db[order] == y_q[:, None])


bits_list = [8, 16, 32]
scores = {"SemanticHashing": [], "ITQ": []}
for bits in bits_list:
    est = model if bits == 16 else semantic_hashing(bits)
    scores["SemanticHashing"].append(precision_at_10(est.transform(X_db), est.transform(X_q)))
    scores["ITQ"].append(precision_at_10(*itq(bits)))
for name, values in scores.items():
    print(name, " ".join(f"{b} bits: {v:.3f}" for b, v in zip(bits_list, values)))

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, values in scores.items():
    ax.plot(bits_list, values, "o-", label=name)
ax.set_xscale("log", base=2)
ax.set_xticks(bits_list, [str(b) for b in bits_list])
ax.set_xlabel("code length (bits)")
ax.set_ylabel("precision of the 10 nearest")
ax.legend()
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
