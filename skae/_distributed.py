"""Data-parallel training on :mod:`torch.distributed` (``distributed=True``).

Every rank runs the same ``fit(X)`` on the same ``X``; this module makes the
ranks one training run:

* :func:`process_group` checks that a process group is initialised (else a
  ValueError that says how to launch);
* :func:`vote` turns a failure on one rank before training (bad input,
  bad settings) into an error on every rank, instead of a hang in the first
  collective;
* :func:`agree` checks that every rank holds the same data (shape, a few
  rows, the normalisation statistics) and hands every rank rank 0's seed;
* :func:`training` marks a fit as data-parallel, and
  :func:`data_parallel` (called by ``_training.train`` for every net the fit
  trains, StackedAE's pretraining stages included) wraps the net's module in
  :class:`~torch.nn.parallel.DistributedDataParallel` and shards its rows
  with :class:`ShardedBatchIterator`, as
  :class:`~torch.utils.data.DistributedSampler` does.

The sharding: each epoch one permutation of the training rows (the identity
with ``shuffle=False``) is drawn from a generator seeded with the shared seed
plus the epoch, padded by repeating its first rows to a multiple of the
world size, and rank ``r`` takes every ``world``-th row starting at ``r``.
Batch ``i`` of rank ``r`` then holds positions ``i * world * b + r + world *
j`` (``j < b``) of the permutation, so the ranks' ``i``-th batches together
are exactly batch ``i`` of one process with batch size ``world * b``
(as long as no padding is needed: ``n_samples`` a multiple of the world
size). Gradients, the epoch's loss, the validation score and the VAE's noise
variance are averaged over the ranks, so every rank sees the same numbers and
stops at the same epoch.
"""

import contextlib
import contextvars
import inspect
import math
import os

import numpy as np
import torch

from . import _rng
from ._batches import BatchIterator, TensorData

LAUNCH_HELP = (
    "distributed=True needs an initialised torch.distributed process group. "
    "Launch one process per device, e.g. "
    "'torchrun --standalone --nproc-per-node=2 train.py', and call "
    "torch.distributed.init_process_group('gloo') ('nccl' on GPUs) in "
    "train.py before fit; every rank then calls fit with the same X. Or set "
    "distributed=False."
)

_ACTIVE = contextvars.ContextVar("skae_data_parallel", default=None)


def _dist():
    import torch.distributed as dist

    return dist


def local_rank():
    """This process's ``LOCAL_RANK`` (set by ``torchrun``), else 0."""
    return int(os.environ.get("LOCAL_RANK", 0))


class ProcessGroup:
    """The default process group as a fit sees it: rank, world, collectives."""

    def __init__(self):
        dist = _dist()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        backend = str(dist.get_backend()).lower()
        self.cpu_ok = "gloo" in backend or "mpi" in backend
        on_gpu = not self.cpu_ok and torch.cuda.is_available()
        self.comm_device = torch.device("cuda", local_rank()) if on_gpu else torch.device("cpu")

    def gather(self, values):
        """``values`` (floats) of every rank, as a ``(world, len)`` float64 array."""
        mine = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        _dist().all_gather(parts, mine)
        return torch.stack(parts).cpu().numpy()

    def sum_(self, tensor):
        """Sum ``tensor`` over the ranks, in place."""
        _dist().all_reduce(tensor)
        return tensor

    def device(self, device):
        """The training device of this rank: ``'cuda'`` means ``LOCAL_RANK``'s GPU."""
        parsed = torch.device(device)
        if parsed.type == "cuda" and parsed.index is None:
            return f"cuda:{local_rank() % max(torch.cuda.device_count(), 1)}"
        if parsed.type == "cpu" and not self.cpu_ok:
            raise ValueError(
                f"device={device!r} with distributed=True needs a process group "
                f"that runs on the CPU, but its backend is "
                f"{_dist().get_backend()!r}; initialise it with 'gloo' (or "
                "'cpu:gloo,cuda:nccl'), or train on device='cuda'."
            )
        return device


def process_group(distributed):
    """The fit's :class:`ProcessGroup`, or None when ``distributed`` is False."""
    if not distributed:
        return None
    dist = _dist()
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(LAUNCH_HELP)
    return ProcessGroup()


@contextlib.contextmanager
def vote(group):
    """Run the body (the fit's validation) on every rank, then compare notes.

    A rank whose body raises tells the others before re-raising, and the
    others raise a ValueError naming it: no rank goes on to wait forever for
    a rank that is not coming.
    """
    if group is None:
        yield
        return
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # keep this rank's own error
            group.gather([0.0])
        raise
    failed = [r for r, (ok,) in enumerate(group.gather([1.0])) if not ok]
    if failed:
        raise ValueError(
            f"distributed fit: rank(s) {failed} failed before training (their own "
            "error says why); every rank stops. Every rank must call fit with the "
            "same X and the same parameters."
        )


def _fingerprint(X, stats):
    n = X.shape[0]
    rows = X[[0, n // 2, n - 1]]
    rows = np.asarray(rows.toarray() if hasattr(rows, "toarray") else rows, dtype=np.float64)
    check = float(rows.sum())
    if stats is not None:
        check += float(np.sum(stats[0])) + float(np.sum(stats[1]))
    return [X.shape[0], X.shape[1], check]


def agree(group, X, seed, stats=None):
    """Rank 0's ``seed``, after checking that every rank holds the same data.

    The check compares the shape of ``X``, three of its rows and (first
    fits) the normalisation statistics; a difference raises the same
    ValueError on every rank.
    """
    if group is None:
        return seed
    table = group.gather([seed, *_fingerprint(X, stats)])
    if not (table[:, 1:] == table[0, 1:]).all():
        shapes = ", ".join(f"rank {r}: {int(t[1])} x {int(t[2])}" for r, t in enumerate(table))
        raise ValueError(
            "distributed=True needs the same X on every rank (each rank trains "
            f"on its own shard of it), but the ranks' X differ ({shapes}; or "
            "their values differ)."
        )
    return int(table[0, 0])


class _Fit:
    """A data-parallel fit in progress: its group, shared seed and nets so far."""

    def __init__(self, group, seed):
        self.group, self.seed, self.n_nets = group, seed, 0


@contextlib.contextmanager
def training(group, seed):
    """Mark the body as a data-parallel fit on ``group`` (None: a plain fit)
    with the shared ``seed`` (from :func:`agree`)."""
    token = _ACTIVE.set(None if group is None else _Fit(group, seed))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def is_lead():
    """True unless this is a data-parallel fit's rank other than 0."""
    fit = _ACTIVE.get()
    return fit is None or fit.group.rank == 0


def derived_seed(*keys):
    """A 31-bit seed derived from integer ``keys`` (shared seed, net, rank)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0] >> 1)


@contextlib.contextmanager
def data_parallel(net):
    """Train ``net`` data-parallel in the body when a fit is marked so.

    Each net of the fit (StackedAE trains one per pretraining stage) gets
    a shuffling seed derived from the shared seed and its number, the same
    on every rank; training noise (corruption, the VAE's draws) comes from
    a stream derived from these and the rank (the body's own generators,
    see :mod:`skae._rng`), so that the shared stream (weight
    initialisation) goes on as in a plain fit on every rank.
    """
    fit = _ACTIVE.get()
    if fit is None:
        yield
        return
    group, fit.n_nets = fit.group, fit.n_nets + 1
    seed = derived_seed(fit.seed, fit.n_nets)
    with _rng.fit_generators(derived_seed(fit.seed, fit.n_nets, group.rank)):
        net._data_parallel = DataParallel(group, net.module_, seed)
        try:
            yield
        finally:
            del net._data_parallel


class DataParallel:
    """What a net asks of data-parallel training: the DDP forward, the
    rank's batches, and averages over the ranks."""

    def __init__(self, group, module, seed):
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        self.group, self.world, self.seed = group, group.world, seed
        # Buffers (normalisation, the VAE's noise variance) are updated
        # identically on every rank: no per-step broadcast.
        params = inspect.signature(DistributedDataParallel).parameters
        sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        self.ddp = DistributedDataParallel(
            module, device_ids=[device] if device.type == "cuda" else None, **{sync: False}
        )

    def iterator(self, dataset, batch_size, training, shuffle):
        if training:
            return ShardedBatchIterator(
                dataset, batch_size, shuffle, self.group.rank, self.world, self.seed
            )
        # Validation: every world-th held-out row, no padding (the score is
        # a sum over the ranks, see epoch_mean).
        rows = _rows(dataset, dataset.X.device)[self.group.rank :: self.world]
        return BatchIterator(TensorData(dataset.X, dataset.y, rows), batch_size, False)

    def mean(self, value):
        """``value`` (a tensor) averaged over the ranks."""
        return self.group.sum_(value.detach().clone()) / self.world

    def epoch_mean(self, total, n_seen):
        """The mean over every rank's rows of a per-rank ``total`` of ``n_seen`` rows."""
        device = total.device if total is not None else self.group.comm_device
        both = torch.zeros(2, dtype=torch.float64, device=device)
        if total is not None:
            both[0] = total.double()
        both[1] = n_seen
        both = self.group.sum_(both.to(self.group.comm_device))
        return float(both[0] / both[1]) if both[1] else float("nan")


def _rows(data, device):
    if data.indices is not None:
        return data.indices
    return torch.arange(len(data), device=device)


class ShardedBatchIterator:
    """One rank's batches, with :class:`~torch.utils.data.DistributedSampler`'s rows.

    Each epoch draws a permutation from a generator seeded with ``seed +
    epoch`` (the identity without ``shuffle``), pads it by repeating its
    first rows to a multiple of ``world`` (``drop_last=False``), and takes
    positions ``rank, rank + world, ...``: every rank gets
    ``ceil(n / world)`` rows and the same number of batches.

    Examples
    --------
    Ten rows on two ranks, batches of 2 per rank, without shuffling: the
    ranks' first batches, ``[0, 2]`` and ``[1, 3]``, are together the first
    batch of 4 rows of one process.

    >>> import torch
    >>> from skae._batches import TensorData
    >>> data = TensorData(torch.arange(10.0)[:, None])
    >>> for rank in (0, 1):
    ...     it = ShardedBatchIterator(data, 2, False, rank, world=2, seed=0)
    ...     print([b[:, 0].int().tolist() for b, _ in it])
    [[0, 2], [4, 6], [8]]
    [[1, 3], [5, 7], [9]]
    """

    def __init__(self, data, batch_size, shuffle, rank, world, seed):
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0

    def shard_size(self):
        return math.ceil(len(self.data) / self.world)

    def __len__(self):
        return math.ceil(self.shard_size() / self.batch_size)

    def shard(self):
        """This epoch's rows of this rank (indices into ``data.X``)."""
        n = len(self.data)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        pad = self.shard_size() * self.world - n
        if pad:
            order = torch.cat([order, order.repeat(math.ceil(pad / n))[:pad]])
        mine = order[self.rank :: self.world].to(self.data.X.device)
        indices = self.data.indices
        return mine if indices is None else indices[mine]

    def __iter__(self):
        X, y, rows = self.data.X, self.data.y, self.shard()
        self.epoch += 1
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start : start + self.batch_size]
            yield X[idx], (None if y is None else y[idx])
