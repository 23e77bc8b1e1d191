"""Shared plumbing of the Display objects (matplotlib stays optional).

Each Display is built with a ``from_estimator`` classmethod (or directly from
arrays), draws with ``plot(ax=None, ...)`` which returns the Display, and
keeps the matplotlib objects it drew as attributes (``figure_``, ``ax_`` and
the artists) so that a figure can be adjusted afterwards. matplotlib is
imported only when something is drawn, and a missing matplotlib raises an
ImportError that says how to install it.
"""

from sklearn.utils._optional_dependencies import check_matplotlib_support


def check_matplotlib(caller_name):
    """scikit-learn's check, with the way to get matplotlib along with skae."""
    try:
        check_matplotlib_support(caller_name)
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, which skae does not install by "
            "default. Install it with `pip install matplotlib`, or install skae "
            "with its `demo` extra (`pip install \".[demo]\"` in a clone of skae)."
        ) from exc


def new_axes(ax, **subplots_kwargs):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(**subplots_kwargs)
    return ax
