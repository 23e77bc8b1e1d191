"""Every private scikit-learn import and the torch device checks live here.

scikit-learn's private helpers (``_fit_context``, ``Interval``, ``StrOptions``)
move between releases; keeping them in one module means a change in
scikit-learn touches only this file.
"""

import functools
from numbers import Integral, Real

import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "Integral",
    "Interval",
    "Real",
    "RealNotInt",
    "StrOptions",
    "_fit_context",
    "check_is_fitted",
    "fused_adam_supported",
    "resolve_device",
    "validate_data",
]


def resolve_device(device):
    """Turn the ``device`` hyperparameter into a usable device string.

    ``'auto'`` picks ``'cuda'`` when a GPU is visible and ``'cpu'`` otherwise.
    An unknown name, or a CUDA device that is not there, raises a ValueError
    naming the value, before anything is allocated.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:N'."
        ) from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine; use device='cpu' or device='auto'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible."
            )
    elif parsed.type not in ("cpu", "mps"):
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or "
            "'cuda:N'."
        )
    return str(parsed)


def map_location(saved_device):
    """Device to load tensors saved on ``saved_device`` onto, on this machine.

    A model fitted on a GPU loads on the CPU when no GPU is visible.
    """
    dev = torch.device(saved_device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return "cpu"
    return str(dev)


@functools.lru_cache(maxsize=None)
def fused_adam_supported(device):
    """Whether this torch build has a fused Adam kernel for ``device``.

    Fused Adam is the same update as the default one (up to float rounding)
    and is about 15% faster per step on the CPU for small networks, so skae
    uses it wherever the installed torch offers it.
    """
    try:
        param = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.Adam([param], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True
