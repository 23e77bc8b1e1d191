"""Training data as device tensors, and batches sliced from them.

No ``Dataset.__getitem__`` per sample and no ``DataLoader`` collation: a
batch is a view or one indexing call on a tensor already on the device.
"""

import math
from typing import NamedTuple, Optional

import torch

from ._rng import current


class TrainingData(NamedTuple):
    """What one training run sees: device tensors and the early-stopping split.

    ``train_rows``/``valid_rows`` are index tensors, or None (no hold-out:
    every row trains). Passed to the net as its ``X``, so the split needs no
    side channel.
    """

    X: torch.Tensor
    y: Optional[torch.Tensor] = None
    train_rows: Optional[torch.Tensor] = None
    valid_rows: Optional[torch.Tensor] = None


class TensorData:
    """Tensors already on the device, optionally restricted to ``indices``."""

    def __init__(self, X, y=None, indices=None):
        self.X, self.y, self.indices = X, y, indices

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)


class BatchIterator:
    """Yield ``(X_batch, y_batch)`` slices of a :class:`TensorData`.

    Without shuffling and without an index subset the batches are views (no
    copy). Otherwise one permutation is drawn per epoch from torch's (forked,
    seeded) generator on the data's device and each batch is gathered with
    one indexing call. When one batch holds every row it is not shuffled
    (no permutation is drawn): a batch's loss is a mean over its rows, so
    their order does not change it.
    """

    def __init__(self, data, batch_size, shuffle):
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        X, y, order = self.data.X, self.data.y, self.data.indices
        n, bs = len(self.data), self.batch_size
        if n <= bs:  # one batch holds every row: its order changes nothing
            rows = slice(0, n) if order is None else order  # a view of a tensor
            yield X[rows], (None if y is None else y[rows])
            return
        if self.shuffle:
            perm = torch.randperm(n, device=X.device, generator=current(X.device))
            order = perm if order is None else order[perm]
        for start in range(0, n, bs):
            if order is None:
                sl = slice(start, start + bs)
                yield X[sl], (None if y is None else y[sl])
            else:
                idx = order[start : start + bs]
                yield X[idx], (None if y is None else y[idx])
