"""Saving and loading skae estimators without pickle.

A saved model is one ``.npz`` archive (a zip of ``.npy`` arrays) read back
with ``numpy.load(..., allow_pickle=False)``:

* ``skae.json`` (stored as a ``uint8`` array) holds the estimator's class
  name, its hyperparameters (``get_params()``), its fitted attributes, the
  file format version, the skae version and a SHA-256 checksum of every
  array;
* every array (module weights and buffers, the optimiser's moments,
  ``mean_``, ``scale_`` ...) is its own ``.npy`` member.

This module is the codec only: :func:`write` stores a class name, the
hyperparameters and an estimator's fitted state (the dict of its
``_get_fitted_state``), and :func:`read` returns them, checked, without
knowing any estimator. Reading never imports a name from the file and never
unpickles: values are JSON or plain numeric arrays, and only the small set
of tags below is understood. :func:`skae.load` (``_loading.py``) turns what
:func:`read` returns into an estimator.

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
import zipfile
import zlib
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch

from ._archive import MAX_HEADER_BYTES, Archive, ArchiveError
from ._version import __version__

FORMAT = "skae-model"
# The file format's own version, apart from the package's: a reader loads
# every version up to its own. 2 added the header checksum.
FORMAT_VERSION = 2
_HEADER = "skae.json"
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


# Deepest nesting of lists and dicts a header may use (skae writes < 10).
MAX_DEPTH = 32
# Widest string a ``__values__`` array may declare beyond its longest value.
_MAX_STR_WIDTH = 1024


class _Decoder:
    """Inverse of :class:`_Encoder`; understands nothing but its tags."""

    def __init__(self, read_array):
        self.read_array = read_array
        self.depth = 0

    def __call__(self, value):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if self.depth >= MAX_DEPTH:
            raise _FormatError(f"the header nests deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return self._decode(value)
        finally:
            self.depth -= 1

    def _decode(self, value):
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
                return self._random_state(self._list(content, tag))
        if "__values__" in value:
            return self._values(value)
        if any(isinstance(k, str) and k.startswith("__") for k in value):
            raise _FormatError(f"unknown tag in {sorted(value)}")
        return {k: self(v) for k, v in value.items()}

    def _random_state(self, content):
        try:
            alg, keys, pos, has_gauss, gauss = content
            keys = self(keys)
            if not (isinstance(keys, np.ndarray) and keys.shape == (624,)):
                raise _FormatError("a random state needs 624 keys")
            if keys.dtype.kind not in "iu" or keys.min() < 0 or keys.max() >= 2**32:
                raise _FormatError("random state keys must be 32-bit unsigned")
            rs = np.random.RandomState()
            rs.set_state((str(alg), keys.astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
        except (ValueError, TypeError, OverflowError) as exc:
            raise _FormatError(f"invalid random state: {exc}") from None
        return rs

    def _values(self, value):
        values = [self(v) for v in self._list(value["__values__"], "__values__")]
        dtype = value.get("dtype")
        if dtype == "object":
            out = np.empty(len(values), dtype=object)
        else:
            if not (isinstance(dtype, str) and dtype.lstrip("<>|=").startswith("U")):
                raise _FormatError(f"unsupported dtype {dtype!r} in __values__")
            if not all(isinstance(v, str) for v in values):
                raise _FormatError("a string array holds a non-string")
            dtype = np.dtype(dtype)
            longest = max((len(v) for v in values), default=0)
            if dtype.itemsize // 4 > max(longest, _MAX_STR_WIDTH):
                raise _FormatError(
                    f"string dtype {dtype.str} is wider than its values need"
                )
            out = np.empty(len(values), dtype=dtype)
        out[:] = values
        shape = value.get("shape", [len(values)])
        if not (isinstance(shape, list) and all(type(n) is int for n in shape)):
            raise _FormatError(f"bad shape {shape!r} in __values__")
        return out.reshape(shape)

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
def write(path, class_name, params, state):
    """Write one model file: ``params`` and the fitted ``state`` of a
    ``class_name`` estimator (see ``_get_fitted_state``)."""
    # ``callbacks`` arrive as plain data (skae._callback_codec).
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
        "class": class_name,
        "device": state["device"],
    }
    header["params"] = {k: encode(v, f"parameter {k!r}") for k, v in params.items()}
    header["attributes"] = {
        k: encode(v, f"fitted attribute {k!r}") for k, v in state["attributes"].items()
    }
    header["module_state"] = [
        [k, encode(v, f"module weight {k!r}")] for k, v in state["module_state"].items()
    ]
    if state.get("optimizer_state") is not None:
        header["optimizer_state"] = encode(state["optimizer_state"], "optimizer state")
    header["checksums"] = {k: _checksum(v) for k, v in encode.arrays.items()}
    header["header_checksum"] = _header_checksum(header)
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
_READ_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError,
    RecursionError, MemoryError, OverflowError, UnicodeDecodeError,
)


def _unreadable(path, exc):
    return ValueError(
        f"{os.fspath(path)!r} is not a readable skae model file (corrupted or "
        f"truncated?): {exc}"
    )


class SavedModel(NamedTuple):
    """What a model file holds, decoded and checked."""

    class_name: str
    params: dict
    state: dict  # as ``_get_fitted_state`` returns it
    skae_version: object
    format_version: int


def read(path):
    """Read and check a model file; raises ValueError for anything malformed.

    Memory stays bounded by a small multiple of the file's size (see
    :mod:`skae._archive`); the header's checksum and every array's are
    verified, and each array member may be used once.
    """
    try:
        archive = Archive(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except ArchiveError as exc:
        if "not a skae model file" in str(exc):
            raise ValueError(f"{os.fspath(path)!r} is {exc}.") from None
        raise _unreadable(path, exc) from None
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from None
    with archive:
        if _HEADER not in archive.files:
            raise ValueError(
                f"{os.fspath(path)!r} is not a skae model file (no {_HEADER} inside)."
            )
        try:
            raw = archive.read(_HEADER, max_bytes=MAX_HEADER_BYTES)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise _FormatError(f"{_HEADER} must be a 1-d uint8 array")
            header = json.loads(raw.tobytes().decode("utf-8"))
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a skae model file.")
        version = _check_header(path, header)
        checksums = header.get("checksums")
        if not isinstance(checksums, dict):
            raise _unreadable(path, KeyError("checksums"))
        used = set()

        def read_array(name):
            if not isinstance(name, str) or name not in checksums:
                raise _FormatError(f"unknown array {name!r}")
            if name in used:
                raise _FormatError(f"array {name!r} is referenced twice")
            used.add(name)
            try:
                array = archive.read(name)
            except _READ_ERRORS as exc:
                raise _unreadable(path, exc) from None
            if _checksum(array) != checksums[name]:
                raise _unreadable(
                    path, ValueError(f"checksum mismatch for array {name!r}")
                )
            return array

        try:
            return _decode(header, _Decoder(read_array), version)
        except (_FormatError, *_READ_ERRORS, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(
                f"{os.fspath(path)!r} does not describe a valid skae model: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def _header_checksum(header):
    """SHA-256 of the header without its own checksum, in a canonical form."""
    body = {k: v for k, v in header.items() if k != "header_checksum"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _check_header(path, header):
    """The file's format version, after checking it and the header's checksum.

    Every format version from 1 to :data:`FORMAT_VERSION` loads, whichever
    skae release wrote it; version 1 (skae 0.1.0) had no header checksum.
    """
    version = header.get("format_version")
    if not (isinstance(version, int) and 1 <= version <= FORMAT_VERSION):
        raise ValueError(
            f"{os.fspath(path)!r} uses skae file format version {version!r} "
            f"(written by skae {header.get('skae_version')!r}); this skae "
            f"({__version__}) reads format versions 1 to {FORMAT_VERSION}. Load it "
            "with a skae release that reads that format."
        )
    if version >= 2 and header.get("header_checksum") != _header_checksum(header):
        raise _unreadable(path, ValueError("checksum mismatch for the header"))
    return version


def _decode(header, decode, version):
    """The :class:`SavedModel` in a checked header (arrays read on demand)."""
    name = header.get("class")
    params = decode(header["params"])
    attributes = decode(header["attributes"])
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise _FormatError("params and attributes must be dicts")
    module_state = {}
    for item in header["module_state"]:
        key, value = item
        if not isinstance(key, str) or key in module_state:
            raise _FormatError(f"bad or repeated module weight name {key!r}")
        module_state[key] = decode(value)
    device = header.get("device", "cpu")
    if not isinstance(device, str):
        raise _FormatError(f"device must be a string, got {device!r}")
    state = {
        "attributes": attributes,
        "module_state": module_state,
        "optimizer_state": (
            decode(header["optimizer_state"]) if "optimizer_state" in header else None
        ),
        "device": device,
    }
    return SavedModel(name, params, state, header.get("skae_version"), version)
