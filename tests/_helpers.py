"""Helpers shared by the test modules (imported as ``from _helpers import ...``)."""

import inspect

import torch

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


def make(cls, defaults, **kw):
    """``cls(**defaults, **kw)``, keeping only the parameters ``cls`` has."""
    params = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in {**defaults, **kw}.items() if k in params})


def weights(est):
    """Copies of every tensor in the fitted module's state."""
    return [t.detach().clone() for t in est.module_.state_dict().values()]


def same_weights(a, b):
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))
