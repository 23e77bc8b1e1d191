"""Torch thread policy of a fit (skae._threads).

Behaviour only: how many threads a fit runs with, and that they are restored.
"""

import threading

import joblib
import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits

from skae import AutoencoderTransformer, _threads
from skae._threads import fit_threads, threads_for_fit


class RecordThreads(Callback):
    """Records torch's thread count at every epoch end (inside the fit)."""

    def __init__(self, barrier=None):
        self.barrier = barrier

    def initialize(self):
        self.seen_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen_.append(torch.get_num_threads())
        if self.barrier is not None and len(self.seen_) <= 2:
            # Both fits run epoch 2 entirely while the other is running too.
            self.barrier.wait(timeout=60)


def _fit(X, barrier=None, **params):
    cb = RecordThreads(barrier)
    est = AutoencoderTransformer(
        2, hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu", callbacks=[cb],
        **params,
    )
    est.fit(X)
    return est._net.callbacks_[-1][1].seen_


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


@pytest.fixture
def X():
    return np.random.RandomState(0).rand(60, 5)


def test_threads_for_fit_policy(monkeypatch):
    monkeypatch.delenv("SKAE_NUM_THREADS", raising=False)
    assert threads_for_fit(8, 1, cpus=8) == 8
    assert threads_for_fit(8, 2, cpus=8) == 4  # two concurrent fits share
    assert threads_for_fit(8, 3, cpus=8) == 2
    assert threads_for_fit(8, 16, cpus=8) == 1  # never zero
    assert threads_for_fit(2, 1, cpus=8) == 2  # a user's limit is kept
    assert threads_for_fit(16, 1, cpus=4) == 4  # never above the cores
    monkeypatch.setenv("SKAE_NUM_THREADS", "3")
    assert threads_for_fit(8, 2, cpus=8) == 3  # the override wins


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_bad_env_value_names_the_variable(monkeypatch, X, value):
    monkeypatch.setenv("SKAE_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"SKAE_NUM_THREADS.*{value}"):
        AutoencoderTransformer(2, max_iter=1, device="cpu").fit(X)
    assert _threads._active == 0  # the failed fit was counted out


def test_env_override_used_in_fit_and_restored(monkeypatch, X, restore_threads):
    torch.set_num_threads(2)
    monkeypatch.setenv("SKAE_NUM_THREADS", "1")
    assert _fit(X) == [1, 1, 1]
    assert torch.get_num_threads() == 2


def test_fit_capped_at_the_cores_and_restored(monkeypatch, X, restore_threads):
    monkeypatch.delenv("SKAE_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "available_cpus", lambda: 2)
    torch.set_num_threads(4)
    assert _fit(X) == [2, 2, 2]
    assert torch.get_num_threads() == 4


def test_threadpool_limits_honoured(monkeypatch, X, restore_threads):
    monkeypatch.delenv("SKAE_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "available_cpus", lambda: 4)
    torch.set_num_threads(4)
    with threadpool_limits(1):
        assert _fit(X) == [1, 1, 1]
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 4


def test_concurrent_fits_in_threads_share_the_cores(monkeypatch, X, restore_threads):
    monkeypatch.delenv("SKAE_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "available_cpus", lambda: 4)
    torch.set_num_threads(4)
    barrier = threading.Barrier(2)
    seen = joblib.Parallel(n_jobs=2, backend="threading")(
        joblib.delayed(_fit)(X, barrier) for _ in range(2)
    )
    # Epoch 2 of each fit ran while the other was running: half the cores each.
    assert [s[1] for s in seen] == [2, 2]
    assert _threads._active == 0
    assert torch.get_num_threads() == 4


def test_fit_threads_counts_out_on_error(restore_threads):
    with pytest.raises(RuntimeError):
        with fit_threads():
            assert _threads._active == 1
            raise RuntimeError
    assert _threads._active == 0
    assert torch.get_num_threads() == restore_threads


def _threads_in_worker_fit():
    X = np.random.RandomState(0).rand(40, 4)
    return _fit(X)


@pytest.mark.slow
def test_loky_workers_get_their_share():
    # joblib starts loky workers with OMP_NUM_THREADS = cpu_count // n_jobs.
    seen = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_threads_in_worker_fit)() for _ in range(2)
    )
    expected = max(1, joblib.cpu_count() // 2)
    assert [s[0] for s in seen] == [expected, expected]
