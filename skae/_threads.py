"""How many torch threads one fit may use, and setting them for its duration.

torch sizes its intra-op thread pool once per process (from
``OMP_NUM_THREADS`` or the number of cores), and :func:`torch.set_num_threads`
changes it for the whole process. Parallel searches run several fits at once,
in worker processes (joblib's loky, dask workers) or in threads of one process
(joblib's threading backend, dask workers with several threads), and each fit
must use only its share of the cores, never all of them. The policy, applied
by :func:`fit_threads` around every fit:

1. ``SKAE_NUM_THREADS`` in the environment (an integer >= 1), when set, is the
   number of threads of every fit: the user's override.
2. Otherwise the fit uses what torch would use in the calling thread, which
   already honours ``OMP_NUM_THREADS``, :func:`torch.set_num_threads`,
   :func:`threadpoolctl.threadpool_limits` (torch's OpenMP runtime is one of
   the libraries it limits) and joblib's loky workers (started with
   ``OMP_NUM_THREADS = cpu_count // n_jobs``), capped at this process's
   share of the cores: ``cpu_count // k`` when ``k`` skae fits run at once
   in this process (threads).

The share is taken again at every epoch (:func:`rebalance`), since fits
start and end at different times, and torch's setting belongs to the thread
that runs each fit. The previous setting of the calling thread is restored
when the fit ends.
"""

import contextlib
import os
import threading

import torch

ENV_VAR = "SKAE_NUM_THREADS"

_lock = threading.Lock()
_active = 0
_local = threading.local()  # this thread's running fit: (previous, cpus)


def available_cpus():
    """CPUs this process may run on (affinity and cgroup quota respected)."""
    try:
        from joblib import cpu_count  # loky's count honours cgroup quotas

        return max(1, cpu_count())
    except ImportError:  # pragma: no cover - joblib comes with scikit-learn
        return max(1, len(os.sched_getaffinity(0)))


def env_threads():
    """The ``SKAE_NUM_THREADS`` override, or None when unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"{ENV_VAR} must be an integer >= 1 (the number of torch threads "
            f"per fit); got {ENV_VAR}={value!r}."
        )
    return n


def threads_for_fit(current, concurrent, cpus=None):
    """The number of torch threads for one of ``concurrent`` fits.

    ``current`` is what torch would use now (``torch.get_num_threads()`` in
    the calling thread); ``cpus`` defaults to :func:`available_cpus`.
    """
    override = env_threads()
    if override is not None:
        return override
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(current, cpus // max(1, concurrent)))


@contextlib.contextmanager
def fit_threads():
    """Run one fit with its share of torch threads; restore them afterwards.

    Yields the number of threads the fit runs with.
    """
    global _active
    previous = torch.get_num_threads()
    outer = getattr(_local, "fit", None)
    with _lock:
        _active += 1
    try:
        _local.fit = (previous, available_cpus())
        yield rebalance()
    finally:
        _local.fit = outer
        with _lock:
            _active -= 1
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def rebalance():
    """Set this thread's torch threads to the running fit's current share.

    Called when a fit starts and at every epoch; does nothing outside
    :func:`fit_threads`. Returns the number of threads (None outside a fit).
    """
    fit = getattr(_local, "fit", None)
    if fit is None:
        return None
    n = threads_for_fit(fit[0], _active, cpus=fit[1])
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
