"""The Poisson likelihood for count data (``loss='poisson'``).

An autoencoder is adapted to a new kind of input by choosing the
observation model ``p(x | mu)`` and training on ``-log p(x | mu)``. For
counts (bag-of-words, events) the decoder's output is a log-rate
``eta = log mu`` per feature and ``x_j ~ Poisson(exp(eta_j))``
independently, so the per-sample loss is

    -log p(x | eta) = sum_j exp(eta_j) - x_j eta_j + log(x_j!)

and ``score_samples`` is the exact log-likelihood ``log p(x | eta)``.
"""

import numpy as np
import torch


def poisson_nll(log_rate, target):
    """Per-sample ``-log Poisson(target | exp(log_rate))`` summed over features.

    Includes ``log(x!) = lgamma(x + 1)``, so that minus this is the exact
    log-probability of the counts.
    """
    return (torch.exp(log_rate) - target * log_rate + torch.lgamma(target + 1)).sum(dim=1)


def check_counts(X, verb="needs"):
    """Raise a ValueError unless X holds non-negative integers (Poisson counts).

    ``X`` is a dense array or a scipy.sparse matrix (its stored values are
    checked); ``verb`` is 'needs' (fit) or 'scores' (scoring).
    """
    values = X.data if hasattr(X, "tocsr") else X
    if not values.size:
        return
    lo = float(values.min())
    non_integer = not np.array_equal(values, np.floor(values))
    if lo < 0 or non_integer:
        what = "needs" if verb == "needs" else "scores"
        problem = f"a negative value ({lo:.6g})" if lo < 0 else "non-integer values"
        raise ValueError(
            f"loss='poisson' {what} counts: non-negative integer values in X; "
            f"got {problem}. Use loss='squared_error' for other data."
        )
