"""``skae.load``: a model file back into an estimator, running no code from it.

:mod:`skae._persistence` reads and checks the file; this module picks the
class (one of skae's public estimators, by name), checks the saved
hyperparameters, and hands the fitted state to the estimator's
``_set_fitted_state``, which rebuilds the module from the hyperparameters.
"""

import os
import warnings

from sklearn.utils._param_validation import InvalidParameterError

from ._base import _BaseAutoencoder
from ._callback_codec import decode_callbacks
from ._persistence import read
from ._validation import check_device_name, check_hidden_sizes, map_location, resolve_device


def _estimator_classes():
    """skae's public estimators by name: the only classes a file may name."""
    found, todo = {}, [_BaseAutoencoder]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("skae.") and not cls.__name__.startswith("_"):
            found[cls.__name__] = cls
    return found


def load(path, *, device=None, allow_version_mismatch="deprecated"):
    """Load an estimator written by its ``save`` method; runs no code from the file.

    Parameters
    ----------
    path : str or path-like
        The file written by ``estimator.save(path)``.
    device : str or None, default=None
        Where to put the model: None uses the device it was fitted on when
        that is available here and the CPU otherwise (a model fitted on a
        GPU loads on a machine without one, with a warning); 'cpu', 'cuda'
        or 'cuda:N' force it. The ``device`` hyperparameter is restored as
        saved and still decides where a later ``fit`` trains.
    allow_version_mismatch : bool, default="deprecated"
        Deprecated and ignored: a file in any format version this skae reads
        loads whichever skae release wrote it (the file format has its own
        version, apart from the package's); passing it warns
        (FutureWarning). It will be removed in a later release.

    Returns
    -------
    estimator : skae estimator
        The fitted estimator, ready for ``transform``, ``inverse_transform``,
        ``score`` and further training (``partial_fit`` resumes the saved
        optimiser state; ``fit`` with ``warm_start=True`` starts a fresh
        optimiser, as it always does).

    Raises
    ------
    ValueError
        If the file is corrupted, truncated, not a regular file, not a skae
        model, in a file format version this skae does not read (the message
        names both versions), names a class that is not a skae estimator,
        declares more data than it holds, or holds weights, optimiser state
        or attributes that do not fit the network its hyperparameters
        describe. Every malformed file raises a ValueError; reading takes
        memory bounded by a small multiple of the file's size.

    See Also
    --------
    skae.AutoencoderTransformer.save : Write a fitted estimator.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skae
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = skae.AutoencoderTransformer(n_components=2, max_iter=5,
    ...                                  random_state=0, device="cpu").fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "digits.skae")
    ...     ae.save(path)
    ...     loaded = skae.load(path)
    >>> type(loaded).__name__, loaded.n_iter_
    ('AutoencoderTransformer', 5)
    >>> bool((loaded.transform(X) == ae.transform(X)).all())
    True
    """
    if allow_version_mismatch != "deprecated":
        warnings.warn(
            "allow_version_mismatch is deprecated and has no effect: files in a "
            "format version this skae reads load whichever skae release wrote "
            "them. It will be removed in a later release.",
            FutureWarning,
            stacklevel=2,
        )
    where = repr(os.fspath(path))
    try:
        return _load(path, where, device)
    except (ValueError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed file is a ValueError
        raise ValueError(
            f"{where} does not describe a valid skae model: {type(exc).__name__}: {exc}"
        ) from None


def _load(path, where, device):
    saved = read(path)
    estimator = _new_estimator(saved, where)
    saved_device = saved.state["device"]
    try:
        check_device_name(saved_device)
        resolve_device(map_location(saved_device))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{where} names an invalid device {saved_device!r}: {exc}") from None
    device = _target_device(saved_device, device)
    try:
        estimator._set_fitted_state(saved.state, device)
    except (TypeError, KeyError, AttributeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{where} does not describe a valid skae model: {exc}") from None
    return estimator


def _new_estimator(saved, where):
    """An unfitted estimator of the saved class with the saved hyperparameters."""
    classes = _estimator_classes()
    name = saved.class_name
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"{where} holds a {name!r}, which is not one of skae's "
            f"estimators ({', '.join(sorted(classes))})."
        )
    unknown = sorted(set(saved.params) - set(cls().get_params(deep=False)))
    if unknown:
        raise ValueError(
            f"{where} sets parameters {unknown} that {name} does not have "
            "(written by a different skae version?)."
        )
    params = dict(saved.params)
    if "callbacks" in params:
        params["callbacks"] = decode_callbacks(params["callbacks"], where)
    estimator = cls(**params)
    try:
        estimator._validate_params()
        check_device_name(estimator.device)
        check_hidden_sizes(estimator.hidden_layer_sizes)
    except (InvalidParameterError, ValueError) as exc:
        raise ValueError(f"{where} holds invalid parameters: {exc}") from None
    return estimator


def _target_device(saved_device, device):
    """Where to load: as asked, else where it was fitted if that exists here."""
    if device is None:
        device = map_location(saved_device)
        if device != saved_device:
            warnings.warn(
                f"The model was fitted on {saved_device!r}, which is not available "
                f"here; it is loaded on {device!r}.",
                UserWarning,
                stacklevel=3,
            )
    return resolve_device(device)
