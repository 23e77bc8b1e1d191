"""Every private scikit-learn import and the torch device checks live here.

scikit-learn's private helpers (``_fit_context``, ``Interval``, ``StrOptions``)
move between releases; keeping them in one module means a change in
scikit-learn touches only this file.
"""

import functools
import inspect
from numbers import Integral, Real

import numpy as np
import sklearn
import torch
from sklearn.base import _fit_context as _sklearn_fit_context
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "Integral",
    "Interval",
    "Real",
    "RealNotInt",
    "StrOptions",
    "_fit_context",
    "check_device_name",
    "check_float32_range",
    "check_hidden_sizes",
    "check_is_fitted",
    "check_log_loss_settings",
    "check_param_values",
    "detached",
    "check_unit_interval",
    "fused_adam_supported",
    "resolve_device",
    "validate_data",
]


def _fit_context(*, prefer_skip_nested_validation):
    """scikit-learn's ``_fit_context``, and call errors that name the public class.

    A ``fit`` inherited from the private base would otherwise fail with
    "_BaseAutoencoder.fit() got an unexpected keyword argument ..."; the
    error names the estimator's class, as scikit-learn's own estimators'
    errors do, and says how to weight samples without ``sample_weight``.
    """

    def decorator(fit_method):
        wrapped = _sklearn_fit_context(
            prefer_skip_nested_validation=prefer_skip_nested_validation
        )(fit_method)
        signature = inspect.signature(fit_method)

        @functools.wraps(fit_method)
        def checked(estimator, *args, **kwargs):
            try:
                signature.bind(estimator, *args, **kwargs)
            except TypeError as exc:
                hint = ""
                if "sample_weight" in kwargs:
                    hint = (
                        "; skae does not weight samples: repeat or resample the rows "
                        "instead (e.g. X[rng.choice(n, size=n, p=w / w.sum())])"
                    )
                raise TypeError(
                    f"{type(estimator).__name__}.{fit_method.__name__}(): {exc}{hint}."
                ) from None
            # scikit-learn's context sets skip_parameter_validation for the
            # duration of fit; a Ctrl-C landing in its exit would leave it set
            # for the whole thread, so the caller's configuration is restored.
            config = sklearn.get_config()
            try:
                return wrapped(estimator, *args, **kwargs)
            finally:
                if sklearn.get_config() != config:
                    sklearn.set_config(**config)

        return checked

    return decorator


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
    elif parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device={device!r} was requested but MPS (Apple GPU) is not "
                "available on this machine; use device='cpu' or device='auto'."
            )
    elif parsed.type != "cpu":
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or "
            "'cuda:N'."
        )
    return str(parsed)


def check_device_name(device):
    """A ValueError unless ``device`` names a device skae knows (not whether
    it is present here: a GPU-fitted model loads on a CPU-only machine)."""
    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not supported; use 'cpu' or 'cuda'.")


def check_hidden_sizes(hidden_layer_sizes):
    """``hidden_layer_sizes`` must be positive integers (booleans are not)."""
    sizes = hidden_layer_sizes
    sizes = [sizes] if isinstance(sizes, Integral) else sizes
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(
        isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in sizes
    ):
        raise ValueError(
            f"hidden_layer_sizes must be positive integers, got {hidden_layer_sizes!r}."
        )


def detached(X):
    """A torch tensor as a numpy array of its dtype (``requires_grad`` and
    GPU tensors are accepted like any array-like); anything else as is."""
    if torch.is_tensor(X):
        return X.detach().cpu().resolve_conj().resolve_neg().numpy()
    return X


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_param_values(estimator):
    """What ``_parameter_constraints`` cannot say, as clear ValueErrors.

    An integer parameter given a bool (``n_components=True``); a real one
    beyond the float32 range the network computes in (``learning_rate_init
    =1e39`` overflows the optimiser's step); ``callbacks`` that are not
    skorch callbacks or ``(name, callback)`` pairs.
    """
    for name, constraints in estimator._parameter_constraints.items():
        value = getattr(estimator, name, None)
        kinds = [c.type for c in constraints if isinstance(c, Interval)]
        if isinstance(value, (bool, np.bool_)) and Integral in kinds:
            raise ValueError(f"{name} must be an integer, got the bool {name}={value!r}.")
        if (
            isinstance(value, Real)
            and not isinstance(value, (bool, np.bool_))
            and (Real in kinds or RealNotInt in kinds)
            and abs(float(value)) > _FLOAT32_MAX
        ):
            raise ValueError(
                f"{name}={value!r} is beyond the float32 range the network trains in "
                f"(+/-{_FLOAT32_MAX:.6g}); use a smaller value."
            )
    _check_callbacks(getattr(estimator, "callbacks", None))


def _check_callbacks(callbacks):
    from skorch.callbacks import Callback

    for item in callbacks or ():
        cb = item[1] if isinstance(item, tuple) and len(item) == 2 and isinstance(
            item[0], str) else item
        if not isinstance(cb, Callback):
            raise ValueError(
                "callbacks must be skorch Callback instances or (name, Callback) "
                f"pairs, got {item!r}."
            )


def map_location(saved_device):
    """Device to load tensors saved on ``saved_device`` onto, on this machine.

    A model fitted on a GPU (CUDA or MPS) loads on the CPU when no such
    GPU is here.
    """
    dev = torch.device(saved_device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        return "cpu"
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps is not None and mps.is_available()):
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


# What each likelihood other than the Gaussian needs of the settings:
# (accepted output_activation values, how to ask for them, the data it models).
_LIKELIHOOD_SETTINGS = {
    "log_loss": ((None, "logistic"), "output_activation='logistic' (or None)", "data in [0, 1]"),
    "poisson": (
        (None,),
        "output_activation=None (it decodes a log-rate and applies exp itself)",
        "counts",
    ),
}


def check_log_loss_settings(output_activation, normalize, loss="log_loss"):
    """``loss='log_loss'`` needs a logistic output, ``loss='poisson'`` its exp
    output; both model the data as given (no normalisation)."""
    accepted, ask, data = _LIKELIHOOD_SETTINGS[loss]
    if output_activation not in accepted:
        raise ValueError(
            f"loss={loss!r} needs {ask}, got output_activation={output_activation!r}."
        )
    if normalize not in ("auto", None):
        raise ValueError(
            f"loss={loss!r} models {data} as it is; use normalize='auto' or None, "
            f"got normalize={normalize!r}."
        )


def check_unit_interval(X, verb="needs"):
    """Raise a ValueError unless every value of X lies in [0, 1] (log_loss).

    ``verb`` is 'needs' (fit) or 'scores' (scoring), for the message.
    """
    if not X.size:
        return
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or hi > 1:
        if verb == "needs":
            what, advice = "needs every value of X", (
                "Rescale X (e.g. with MinMaxScaler) or use loss='squared_error'."
            )
        else:
            what, advice = "scores data", "Rescale X as it was for fit."
        raise ValueError(
            f"loss='log_loss' {what} in [0, 1]; got values in "
            f"[{lo:.6g}, {hi:.6g}]. {advice}"
        )


def check_float32_range(X):
    """float64 X must fit the float32 range the network trains in."""
    if X.dtype != np.float64 or not X.size:
        return
    limit = float(np.finfo(np.float32).max)
    lo, hi = float(X.min()), float(X.max())
    if lo < -limit or hi > limit:
        raise ValueError(
            f"X has values in [{lo:.6g}, {hi:.6g}], beyond the float32 range "
            f"(+/-{limit:.6g}) that the network trains in; rescale X (e.g. "
            "with StandardScaler)."
        )
