"""Helpers shared by the test modules (imported as ``from _helpers import ...``)."""

import inspect
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

import skae
from skae._base import _BaseAutoencoder


def public_estimators():
    """Every public skae estimator class, so a new one is tested everywhere."""
    return [
        obj
        for name in skae.__all__
        for obj in [getattr(skae, name)]
        if inspect.isclass(obj) and issubclass(obj, _BaseAutoencoder)
    ]


# Small, seeded, CPU-only settings every fast test starts from.
SEEDED_CPU = dict(random_state=0, device="cpu")
FAST_PARAMS = dict(hidden_layer_sizes=(8,), max_iter=5, pretrain_max_iter=2, **SEEDED_CPU)


def fast_estimator(cls, *args, **params):
    """``cls`` with :data:`FAST_PARAMS` overridden by ``params``.

    Only the parameters ``cls`` has are passed, so one call serves every
    estimator (``pretrain_max_iter`` reaches StackedAE alone). A test module
    that needs other settings binds them once with ``functools.partial``.
    """
    own = inspect.signature(cls).parameters
    merged = {**FAST_PARAMS, **params}
    return cls(*args, **{k: v for k, v in merged.items() if k in own})


def fit_quietly(est, X, y=None):
    """``est.fit(X, y)`` without the ConvergenceWarning of a short fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def weights(est):
    """Copies of every tensor in the fitted module's state."""
    return [t.detach().clone() for t in est.module_.state_dict().values()]


def same_weights(a, b):
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))


def bruteforce_penalty(encode, x):
    """Per-sample ||J||_F^2, one full Jacobian per row (slow, obviously right)."""
    rows = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(
            lambda v: encode(v[None])[0], xi, create_graph=True
        )
        rows.append(jac.pow(2).sum())
    return torch.stack(rows)


def assert_close_rel(actual, expected, rtol):
    """max|actual - expected| <= rtol * max|expected| (exact when expected is 0)."""
    scale = expected.abs().max()
    if scale == 0:
        assert actual.abs().max() == 0
        return
    err = (actual - expected).abs().max() / scale
    assert err < rtol, f"relative error {err:.3g} >= {rtol}"


def random_codes(n, n_bits, seed=0, duplicates=True):
    """Random {0, 1} codes; rows 7, 12 and 30 copy row 3 (ties at distance 0)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2, (n, n_bits)).astype(np.uint8)
    if duplicates and n > 30:  # ties at distance 0 and a bucket of several rows
        codes[[7, 12, 30]] = codes[3]
    return codes


def brute_hamming(q, db):
    """Hamming distances of unpacked {0,1} rows, the slow obvious way."""
    return (q[:, None, :] != db[None, :, :]).sum(axis=2)
