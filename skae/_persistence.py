"""Saving and loading skae estimators without pickle.

A saved model is one ``.npz`` archive (a zip of ``.npy`` arrays) read back
with ``numpy.load(..., allow_pickle=False)``:

* ``skae.json`` (stored as a ``uint8`` array) holds the estimator's class
  name, its hyperparameters (``get_params()``), its fitted attributes, the
  file format version, the skae version and a SHA-256 checksum of every
  array;
* every array (module weights and buffers, the optimiser's moments,
  ``mean_``, ``scale_`` ...) is its own ``.npy`` member.

Loading never imports a name from the file and never unpickles: the class
must be one of skae's public estimators, values are JSON or plain numeric
arrays, and only the small set of tags below is understood. The module is
rebuilt from the hyperparameters with the estimator's ``_build_module`` and
the weights are loaded with ``load_state_dict(strict=True)``.

JSON tags (a dict with one key) for values JSON cannot hold directly:
``__tuple__`` (a tuple), ``__items__`` (a dict whose keys are not plain
strings), ``__array__`` / ``__tensor__`` (name of an array member),
``__values__`` (a small object or string array stored as a JSON list) and
``__random_state__`` (a ``numpy.random.RandomState``'s state).
"""

import hashlib
import json
import os
import uuid
import warnings
import zipfile
import zlib
from numbers import Integral, Real

import numpy as np
import torch

FORMAT = "skae-model"
FORMAT_VERSION = 1
_HEADER = "skae.json"
# Fitted attributes rebuilt on load rather than stored.
_REBUILT = {"_net", "module_", "_inference", "device_"}
# Optimiser settings that describe the implementation on one machine, not
# the optimisation state: the loading machine keeps its own.
_OPTIMIZER_IMPL_KEYS = ("fused", "foreach", "capturable", "differentiable")


def _estimator_classes():
    """skae's public estimators by name: the only classes a file may name."""
    import inspect

    import skae

    from ._base import _BaseAutoencoder

    return {
        name: obj
        for name in skae.__all__
        for obj in [getattr(skae, name)]
        if inspect.isclass(obj) and issubclass(obj, _BaseAutoencoder)
    }


# ----------------------------------------------------------------------
# encoding
# ----------------------------------------------------------------------
class _Encoder:
    """Turn Python/numpy/torch values into JSON, collecting the arrays."""

    def __init__(self):
        self.arrays = {}

    def _store(self, array):
        name = f"a{len(self.arrays)}"
        # (np.ascontiguousarray would turn a 0-d array into shape (1,).)
        self.arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
        return name

    def __call__(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, Integral):
            return int(value)
        if isinstance(value, Real):
            return float(value)
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, where) for v in value]}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}
            return {
                "__items__": [
                    [self(k, where), self(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, torch.Tensor):
            array = value.detach().cpu()
            if array.dtype == torch.bfloat16:
                raise TypeError(
                    f"cannot save {where}: bfloat16 tensors are not supported"
                )
            return {"__tensor__": self._store(array.numpy())}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biufc":
                return {"__array__": self._store(value)}
            if value.dtype.kind in "OU" and all(
                isinstance(v, (str, bool, Integral, Real)) for v in value.flat
            ):
                return {
                    "__values__": [self(v, where) for v in value.ravel().tolist()],
                    "dtype": value.dtype.str if value.dtype.kind == "U" else "object",
                    "shape": list(value.shape),
                }
            raise TypeError(
                f"cannot save {where}: an array of dtype {value.dtype} holding "
                "values other than strings and numbers."
            )
        if isinstance(value, np.random.RandomState):
            alg, keys, pos, has_gauss, gauss = value.get_state()
            return {
                "__random_state__": [
                    alg,
                    {"__array__": self._store(keys)},
                    int(pos),
                    int(has_gauss),
                    float(gauss),
                ]
            }
        raise TypeError(
            f"cannot save {where} of type {type(value).__module__}."
            f"{type(value).__qualname__}: skae files hold only numbers, strings, "
            "lists, dicts, arrays and tensors (no pickled objects)."
        )


class _FormatError(ValueError):
    """The header holds something no skae writer produces."""


class _Decoder:
    """Inverse of :class:`_Encoder`; understands nothing but its tags."""

    def __init__(self, read_array):
        self.read_array = read_array

    def __call__(self, value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            raise _FormatError(f"unexpected JSON value {value!r}")
        if len(value) == 1:
            ((tag, content),) = value.items()
            if tag == "__tuple__":
                return tuple(self(v) for v in self._list(content, tag))
            if tag == "__items__":
                return {
                    self._key(k): self(v)
                    for k, v in (self._pair(p) for p in self._list(content, tag))
                }
            if tag == "__array__":
                return self.read_array(content)
            if tag == "__tensor__":
                return torch.from_numpy(np.array(self.read_array(content), copy=True))
            if tag == "__random_state__":
                alg, keys, pos, has_gauss, gauss = self._list(content, tag)
                rs = np.random.RandomState()
                rs.set_state(
                    (str(alg), self(keys), int(pos), int(has_gauss), float(gauss))
                )
                return rs
        if "__values__" in value:
            values = [self(v) for v in self._list(value["__values__"], "__values__")]
            dtype = value.get("dtype")
            if dtype != "object" and not (
                isinstance(dtype, str) and dtype.lstrip("<>|=").startswith("U")
            ):
                raise _FormatError(f"unsupported dtype {dtype!r} in __values__")
            out = np.empty(len(values), dtype=object if dtype == "object" else dtype)
            out[:] = values
            return out.reshape([int(n) for n in value.get("shape", [len(values)])])
        if any(isinstance(k, str) and k.startswith("__") for k in value):
            raise _FormatError(f"unknown tag in {sorted(value)}")
        return {k: self(v) for k, v in value.items()}

    @staticmethod
    def _list(content, tag):
        if not isinstance(content, list):
            raise _FormatError(f"{tag} must hold a list")
        return content

    def _pair(self, pair):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise _FormatError("__items__ must hold [key, value] pairs")
        return pair

    def _key(self, key):
        key = self(key)
        if isinstance(key, list):
            raise _FormatError("a dict key cannot be a list")
        return key


def _checksum(array):
    digest = hashlib.sha256()
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    data = array if array.flags.c_contiguous else array.copy(order="C")
    digest.update(data.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


# ----------------------------------------------------------------------
# save
# ----------------------------------------------------------------------
def save(estimator, path):
    """Write a fitted skae estimator to ``path`` (see the estimators' ``save``)."""
    from . import __version__
    from ._validation import check_is_fitted

    check_is_fitted(estimator)
    classes = _estimator_classes()
    name = type(estimator).__name__
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"{type(estimator).__qualname__} is not one of skae's public estimators "
            f"({', '.join(sorted(classes))}); only those can be saved."
        )
    params = estimator.get_params(deep=False)
    if params.get("callbacks"):
        raise ValueError(
            "callbacks cannot be saved: they are arbitrary Python objects, and a "
            "skae file holds no code. Clear them before saving, e.g. "
            "est.set_params(callbacks=None).save(path); the trained model is "
            "unaffected."
        )
    encode = _Encoder()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skae_version": __version__,
        "created_with": {
            "numpy": np.__version__,
            "torch": torch.__version__,
            "scikit-learn": __import__("sklearn").__version__,
        },
        "class": name,
        "device": estimator.device_,
    }
    header["params"] = {k: encode(v, f"parameter {k!r}") for k, v in params.items()}
    attributes = {
        k: v
        for k, v in vars(estimator).items()
        if k not in params and k not in _REBUILT and not k.startswith("__")
    }
    header["attributes"] = {
        k: encode(v, f"fitted attribute {k!r}") for k, v in attributes.items()
    }
    header["module_state"] = [
        [k, encode(v, f"module weight {k!r}")]
        for k, v in estimator.module_.state_dict().items()
    ]
    net = getattr(estimator, "_net", None)
    if net is not None and getattr(net, "optimizer_", None) is not None:
        header["optimizer_state"] = encode(
            net.optimizer_.state_dict(), "optimizer state"
        )
    header["checksums"] = {k: _checksum(v) for k, v in encode.arrays.items()}
    blob = json.dumps(header).encode("utf-8")
    members = {_HEADER: np.frombuffer(blob, dtype=np.uint8), **encode.arrays}

    # Write next to the target and rename: an interrupted save never leaves
    # a truncated file in place of a good one.
    path = os.path.abspath(os.fspath(path))
    tmp = os.path.join(
        os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp"
    )
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **members)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ----------------------------------------------------------------------
# load
# ----------------------------------------------------------------------
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError)


def _unreadable(path, exc):
    return ValueError(
        f"{os.fspath(path)!r} is not a readable skae model file (corrupted or "
        f"truncated?): {type(exc).__name__}: {exc}"
    )


def load(path, *, device=None, allow_version_mismatch=False):
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
    allow_version_mismatch : bool, default=False
        A file written by a different skae version raises a ValueError;
        True loads it anyway, with a warning (the weights must still match
        the rebuilt network exactly).

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
        If the file is corrupted, truncated, not a skae model, written by an
        unknown format or skae version, names a class that is not a skae
        estimator, or holds weights that do not fit the network its
        hyperparameters describe.

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
    from . import __version__
    from ._base import _InferenceCache
    from ._validation import map_location, resolve_device

    if not os.path.exists(os.fspath(path)):
        raise FileNotFoundError(f"No such file: {os.fspath(path)!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (PermissionError, IsADirectoryError):
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{os.fspath(path)!r} is a single numpy array, not a skae model file."
        )
    with archive:
        if _HEADER not in archive.files:
            raise ValueError(
                f"{os.fspath(path)!r} is not a skae model file (no {_HEADER} inside)."
            )
        try:
            raw = archive[_HEADER]
            header = json.loads(bytes(raw).decode("utf-8"))
        except (*_READ_ERRORS, UnicodeDecodeError) as exc:
            raise _unreadable(path, exc) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a skae model file.")
        version = header.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{os.fspath(path)!r} uses skae file format version {version!r} "
                f"(written by skae {header.get('skae_version')!r}); this skae "
                f"({__version__}) reads format version {FORMAT_VERSION}. Load it with "
                f"the skae version that wrote it."
            )
        saved_version = header.get("skae_version")
        if saved_version != __version__:
            message = (
                f"{os.fspath(path)!r} was written by skae {saved_version!r}; this is "
                f"skae {__version__}."
            )
            if not allow_version_mismatch:
                raise ValueError(
                    message + " Install that version, or pass "
                    "allow_version_mismatch=True to load it anyway."
                )
            warnings.warn(message + " Loading it anyway.", UserWarning, stacklevel=2)

        checksums = header.get("checksums")
        if not isinstance(checksums, dict):
            raise _unreadable(path, KeyError("checksums"))

        def read_array(name):
            if not isinstance(name, str) or name not in checksums:
                raise _FormatError(f"unknown array {name!r}")
            try:
                array = archive[name]
            except _READ_ERRORS as exc:
                raise _unreadable(path, exc) from None
            if _checksum(array) != checksums[name]:
                raise _unreadable(
                    path, ValueError(f"checksum mismatch for array {name!r}")
                )
            if array.dtype.kind not in "biufc" or array.dtype.fields is not None:
                raise _FormatError(
                    f"array {name!r} has unsupported dtype {array.dtype}"
                )
            return array

        try:
            return _rebuild(
                header,
                _Decoder(read_array),
                device,
                map_location,
                resolve_device,
                _InferenceCache,
                path,
            )
        except (_FormatError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"{os.fspath(path)!r} does not describe a valid skae model: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def _rebuild(header, decode, device, map_location, resolve_device, cache_cls, path):
    from sklearn.utils._param_validation import InvalidParameterError

    classes = _estimator_classes()
    name = header.get("class")
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"{os.fspath(path)!r} holds a {name!r}, which is not one of skae's "
            f"estimators ({', '.join(sorted(classes))})."
        )
    params = decode(header["params"])
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"{os.fspath(path)!r} sets parameters {unknown} that {name} does not have "
            "(written by a different skae version?)."
        )
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise ValueError(
            f"{os.fspath(path)!r} holds invalid parameters: {exc}"
        ) from None

    attributes = decode(header["attributes"])
    for key, value in attributes.items():
        if (
            not isinstance(key, str)
            or not key.isidentifier()
            or key.startswith("__")
            or key in known
            or key in _REBUILT
            or hasattr(cls, key)
        ):
            raise ValueError(f"{os.fspath(path)!r} sets a forbidden attribute {key!r}.")
        setattr(estimator, key, value)
    if not isinstance(getattr(estimator, "n_features_in_", None), int):
        raise ValueError(f"{os.fspath(path)!r} has no n_features_in_.")

    saved_device = header.get("device", "cpu")
    if device is None:
        device = map_location(saved_device)
        if device != saved_device:
            warnings.warn(
                f"The model was fitted on {saved_device!r}, which is not available "
                f"here; it is loaded on {device!r}.",
                UserWarning,
                stacklevel=3,
            )
    device = resolve_device(device)

    # The freshly initialised weights are overwritten below; fork the global
    # RNG so that loading does not disturb the user's random stream.
    with torch.random.fork_rng(devices=[]):
        module = estimator._build_module(estimator.n_features_in_)
    state = {}
    for item in header["module_state"]:
        key, value = item
        state[key] = decode(value)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"The weights in {os.fspath(path)!r} do not fit the network that {name}'s "
            f"saved hyperparameters describe (a file edited, or written by another "
            f"class or skae version?): {exc}"
        ) from None
    module = module.to(device).eval()

    net = estimator._make_net(module, device)
    net.initialize()
    if "optimizer_state" in header:
        optimizer_state = decode(header["optimizer_state"])
        current = net.optimizer_.state_dict()["param_groups"]
        try:
            for group, fresh in zip(optimizer_state["param_groups"], current):
                for key in _OPTIMIZER_IMPL_KEYS:
                    if key in fresh:
                        group[key] = fresh[key]
            net.optimizer_.load_state_dict(optimizer_state)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(
                f"The optimiser state in {os.fspath(path)!r} does not fit the network: "
                f"{exc}"
            ) from None
    net.module_.eval()
    estimator._net = net
    estimator.module_ = net.module_
    estimator.device_ = device
    estimator._inference = cache_cls()
    return estimator
