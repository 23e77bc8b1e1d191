import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

# Two cores are shared between pytest workers and torch; one intra-op thread
# per process keeps torch from thrashing when anything else runs.
torch.set_num_threads(int(os.environ.get("SKAE_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture
def world_of_one(tmp_path):
    """A one-process gloo group (distributed=True runs as in a world of 1)."""
    dist = pytest.importorskip("torch.distributed")
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    dist.init_process_group(
        "gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
    )
    try:
        yield
    finally:
        dist.destroy_process_group()
