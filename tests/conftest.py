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
