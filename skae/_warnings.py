"""Warnings that name the user's line.

A warning raised deep inside ``fit`` (through scikit-learn's ``_fit_context``
wrapper, ``fit_transform``, a Pipeline or a search run in the same process)
should be reported at the line of the user's code that started it, so that
the printed location is theirs and ``warnings.filterwarnings(...,
module=...)`` can match their module. A fixed ``stacklevel`` cannot do that:
the depth differs between ``fit`` and ``fit_transform``, between estimators,
and between direct and meta-estimator calls.
"""

import os
import sys
import warnings

from sklearn.exceptions import ConvergenceWarning


def _package_dir(name):
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) + os.sep if path else None


def _internal_prefixes():
    names = ("skae", "sklearn", "skorch", "joblib", "torch")
    return tuple(p for p in map(_package_dir, names) if p)


def user_stacklevel(skip=1):
    """The ``stacklevel`` that makes a warning name the first frame outside
    skae and the libraries it runs in (scikit-learn, skorch, joblib, torch).

    ``skip=1`` counts from the caller of this function (the one that calls
    :func:`warnings.warn`). When every frame is internal (a fit started by a
    worker process), the outermost frame is named.
    """
    prefixes = _internal_prefixes()
    frame = sys._getframe(skip)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(prefixes):
        frame = frame.f_back
        level += 1
    return level


def warn_not_converged(est):
    """MLP's ConvergenceWarning for ``est`` (``max_iter`` reached), at the user's line."""
    warnings.warn(
        f"{type(est).__name__}: maximum iterations ({est.max_iter}) "
        "reached and the optimization hasn't converged yet.",
        ConvergenceWarning,
        # The frame search starts at our caller, one level above this one.
        stacklevel=user_stacklevel(2) + 1,
    )
