"""Input normalisation statistics, computed in bounded memory."""

import numpy as np
import scipy.sparse as sp

from ._inference import CHUNK_ELEMENTS
from ._sparse import sparse_stats


def normalization_stats(X, mode):
    """Per-feature mean and divisor (float64 ndarrays) for ``normalize``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Raw training data.
    mode : {'global', 'feature'} or None
        'global' centres each feature and divides by one scale, the root
        mean feature variance; 'feature' standardises each feature
        (constant features are only centred); None is the identity.

    Computed from X in float64, in bounded chunks (no full-size copy); a
    scipy.sparse X is never densified (the centring is applied per batch
    in training, see :mod:`skae._sparse`).
    """
    n_samples, n_features = X.shape
    if mode is None:
        return np.zeros(n_features), np.ones(n_features)
    if sp.issparse(X):
        mean, var = sparse_stats(X)
    else:
        mean, var = _dense_stats(X)
    if mode == "global":
        total = float(np.sqrt(var.mean()))
        return mean, np.full(n_features, total if total > 0 else 1.0)
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    return mean, scale


def _dense_stats(X):
    """Per-feature mean and variance (float64), in bounded temporaries."""
    n_samples, n_features = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    sq = np.zeros(n_features)
    step = max(1, CHUNK_ELEMENTS // 2 // n_features)  # 16 MB temporaries
    for start in range(0, n_samples, step):
        diff = X[start : start + step].astype(np.float64)
        diff -= mean
        diff *= diff
        sq += diff.sum(axis=0)
        del diff  # freed before the next chunk's is made
    return mean, sq / n_samples
