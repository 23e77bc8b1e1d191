"""Data loading shared by the benchmark scripts (offline only)."""

import gzip
from pathlib import Path

import numpy as np

DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def load_mnist_test(mnist_dir=None):
    """The 10,000 MNIST test images as float32 in [0, 1], shape (10000, 784), and labels.

    Reads the idx files ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz`` from ``mnist_dir`` (default: ``../shared/data/mnist``
    beside the repository).
    """
    mnist_dir = Path(mnist_dir) if mnist_dir else DEFAULT_MNIST_DIR
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz", "rb") as f:
        header = np.frombuffer(f.read(16), dtype=">u4")
        if header[0] != 2051:
            raise ValueError(f"not an idx image file: magic {header[0]}")
        n, rows, cols = (int(v) for v in header[1:])
        X = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, rows * cols)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        header = np.frombuffer(f.read(8), dtype=">u4")
        if header[0] != 2049:
            raise ValueError(f"not an idx label file: magic {header[0]}")
        y = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
    return X.astype(np.float32) / 255.0, y


def mnist_split(mnist_dir=None, n_train=8000):
    """The benchmark convention: first 8,000 images train, last 2,000 test."""
    X, y = load_mnist_test(mnist_dir)
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]
