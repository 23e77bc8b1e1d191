"""scipy.sparse training data: the matrix stays sparse, batches come out dense.

A bag-of-words matrix of 40,000 documents over 25,000 words is a few MB as
CSR and 3.7 GiB as dense float32. :class:`SparseRows` keeps the CSR matrix
on the CPU and stands in for the dense device tensor of the training data:
indexing it with a slice or an index tensor (what
:class:`~skae._batches.BatchIterator` does) densifies just those rows, moves
them to the device and applies the normalisation there, so the whole matrix
is never dense. Centring happens per batch, after densifying, which is why
sparse input can use every ``normalize`` mode.
"""

import numpy as np
import scipy.sparse as sp
import torch

from ._inference import CHUNK_ELEMENTS


class SparseRows:
    """A CSR matrix whose rows index out as normalised dense device tensors.

    Parameters
    ----------
    X : scipy.sparse matrix of shape (n_samples, n_features)
        Validated training data (converted to float32 CSR once).
    device : str or torch.device
        Where batches are made.
    """

    def __init__(self, X, device):
        self.matrix = sp.csr_matrix(X, dtype=np.float32)
        self.shape = self.matrix.shape
        self.device = torch.device(device)
        self.mean = self.scale = None

    def __len__(self):
        return self.shape[0]

    def set_normalization(self, mean, scale):
        """Batches become ``(x - mean) / scale`` (None: as given)."""
        like = dict(dtype=torch.float32, device=self.device)
        self.mean = torch.as_tensor(mean, **like)
        self.scale = torch.as_tensor(scale, **like)

    def __getitem__(self, rows):
        if torch.is_tensor(rows):
            rows = rows.cpu().numpy()
        x = torch.from_numpy(self.matrix[rows].toarray()).to(self.device)
        if self.mean is not None:
            x.sub_(self.mean).div_(self.scale)
        return x

    def chunks(self):
        """Dense normalised row blocks of bounded size, in order."""
        step = max(1, CHUNK_ELEMENTS // max(1, self.shape[1]))
        for start in range(0, self.shape[0], step):
            yield self[start : start + step]

    # What the variants ask of the training tensor, computed without
    # densifying more than one chunk at a time.
    def var(self, dim=0, correction=0):
        """Per-feature variance of the normalised rows (``dim=0`` only)."""
        sums = sum(c.double().sum(dim=0) for c in self.chunks())
        sq = sum(c.double().pow(2).sum(dim=0) for c in self.chunks())
        mean = sums / len(self)
        return (sq / len(self) - mean**2).clamp_min(0).float()

    def _extreme(self, which):
        # Per-feature extremes of the raw matrix (implicit zeros included),
        # normalised as a batch would be: the map is monotone (scale > 0).
        raw = getattr(self.matrix, which)(axis=0).toarray().ravel()
        x = torch.from_numpy(raw.astype(np.float32)).to(self.device)
        return x if self.mean is None else (x - self.mean) / self.scale

    def amin(self, dim=0):
        return self._extreme("min")

    def amax(self, dim=0):
        return self._extreme("max")


def training_rows(X, device, owned, dense_tensor):
    """The fit's training data: a :class:`SparseRows` for sparse X, else
    ``dense_tensor(X, device, owned)`` (the one float32 device copy)."""
    if sp.issparse(X):
        return SparseRows(X, device)
    return dense_tensor(X, device, owned)


def normalize_rows(X_t, mean, scale):
    """Normalise the training data: in place for a tensor, per batch for sparse."""
    if isinstance(X_t, SparseRows):
        X_t.set_normalization(mean, scale)
    else:
        like = dict(dtype=X_t.dtype, device=X_t.device)
        X_t.sub_(torch.as_tensor(mean, **like)).div_(torch.as_tensor(scale, **like))


def normalized_extremes(X_t):
    """The training tensor itself, or for :class:`SparseRows` a 2-row tensor
    of its per-feature normalised minima and maxima: what a check of the
    normalised values' range needs, without densifying."""
    if isinstance(X_t, SparseRows):
        return torch.stack([X_t.amin(), X_t.amax()])
    return X_t


def encode_rows(encode, H):
    """``encode(H)`` for a tensor; chunk by chunk for :class:`SparseRows`."""
    if isinstance(H, SparseRows):
        return torch.cat([encode(chunk) for chunk in H.chunks()])
    return encode(H)


def sparse_stats(X):
    """Per-feature mean and variance (float64) of a sparse X, never dense."""
    X = sp.csr_matrix(X, dtype=np.float64)
    n = X.shape[0]
    mean = np.asarray(X.sum(axis=0)).ravel() / n
    sq = np.asarray(X.multiply(X).sum(axis=0)).ravel() / n
    return mean, np.maximum(sq - mean**2, 0.0)
