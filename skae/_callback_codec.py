"""The ``callbacks`` hyperparameter in a skae file: skorch's built-ins only.

A saved file holds no code, so a callback is stored as its class name and
its parameters, and only when the class is one of skorch's standard
callbacks in :data:`ALLOWED` and every parameter that differs from the
class's default is plain JSON data (numbers, strings, booleans, None, lists
and string-keyed dicts of them; ``LoadInitState``'s checkpoint is stored the
same way). Loading rebuilds the callback from that allow-list and never
imports a name read from the file. Anything else (a custom callback, a
callable ``monitor``, an ``LRScheduler`` policy given as a class instead of
its name) makes ``save`` raise a ValueError that names it.

Callbacks that write or read files (``Checkpoint``, ``TrainEndCheckpoint``,
``LoadInitState``) are stored only with relative paths inside the working
directory, and a file asking for anything else is refused on load: a loaded
model that is fitted again must not write wherever a file says.
"""

import inspect
import math
import os

import skorch.callbacks
import torch

ALLOWED = frozenset({
    "Checkpoint", "TrainEndCheckpoint", "LoadInitState", "EarlyStopping", "LRScheduler",
    "ProgressBar", "GradientNormClipping", "EpochTimer", "PrintLog",
})
_PATHS = ("dirname", "fn_prefix", "f_params", "f_optimizer", "f_criterion", "f_history",
          "f_pickle", "f_module")


def _plain(value):
    if value is None or isinstance(value, (bool, str, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and not k.startswith("__") and _plain(v)
                   for k, v in value.items())
    return False


def _check_paths(name, params):
    for key in _PATHS:
        value = params.get(key)
        if isinstance(value, str) and value and (
            os.path.isabs(value) or ".." in value.replace("\\", "/").split("/")
        ):
            raise ValueError(
                f"{name}({key}={value!r}): a saved callback may only use relative "
                "paths inside the working directory."
            )


def _encode_one(cb, where):
    cls = type(cb)
    name = cls.__name__
    if name not in ALLOWED or getattr(skorch.callbacks, name, None) is not cls:
        raise ValueError(
            f"callbacks cannot be saved: {where} is a {cls.__module__}.{cls.__qualname__}; "
            f"a skae file holds no code, so only skorch's {', '.join(sorted(ALLOWED))} "
            "can be stored. Clear the callbacks before saving, e.g. "
            "est.set_params(callbacks=None).save(path); the trained model is unaffected."
        )
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    params = {}
    for key, value in cb.get_params(deep=False).items():
        if key in defaults and value is defaults[key]:
            continue
        if name == "LoadInitState" and key == "checkpoint":
            value = _encode_one(value, f"{where}.checkpoint")
        elif not _plain(value):
            raise ValueError(
                f"callbacks cannot be saved: {name}'s parameter {key}={value!r} is not "
                "plain data (a skae file holds no code); pass names and numbers "
                "(e.g. LRScheduler(policy='StepLR')), or clear the callbacks before "
                "saving with est.set_params(callbacks=None)."
            )
        params[key] = list(value) if isinstance(value, tuple) else value
    _check_paths(name, params)
    return {"class": name, "params": params}


def encode_callbacks(callbacks):
    """The ``callbacks`` parameter as JSON data (None stays None)."""
    if callbacks is None:
        return None
    encoded = []
    for i, item in enumerate(callbacks):
        label, cb = item if isinstance(item, tuple) else (None, item)
        entry = _encode_one(cb, f"callbacks[{i}]")
        if label is not None:
            entry["name"] = label
        encoded.append(entry)
    return encoded


def _decode_one(entry, where):
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        raise ValueError(f"{where} is not a stored callback")
    name = entry.get("class")
    if name not in ALLOWED:
        raise ValueError(f"{where} names {name!r}, not one of {sorted(ALLOWED)}")
    cls = getattr(skorch.callbacks, name)
    params = dict(entry["params"])
    accepted = inspect.signature(cls.__init__).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for key, value in params.items():
        if key not in accepted and not takes_kwargs:
            raise ValueError(f"{where}: {name} has no parameter {key!r}")
        if key != "checkpoint" and not _plain(value):
            raise ValueError(f"{where}: {name}'s parameter {key!r} is not plain data")
    _check_paths(name, params)
    if name == "LRScheduler":
        policy = params.get("policy", "WarmRestartLR")
        target = getattr(torch.optim.lr_scheduler, str(policy), None)
        if policy != "WarmRestartLR" and not (
            isinstance(target, type)
            and issubclass(target, (torch.optim.lr_scheduler.LRScheduler,
                                    torch.optim.lr_scheduler.ReduceLROnPlateau))
        ):
            raise ValueError(f"{where}: {policy!r} is not a torch learning-rate scheduler")
    if name == "LoadInitState":
        params["checkpoint"] = _decode_one(params.get("checkpoint"), f"{where}.checkpoint")
        if not isinstance(params["checkpoint"], skorch.callbacks.Checkpoint):
            raise ValueError(f"{where}: LoadInitState needs a Checkpoint")
    return cls(**params)


def decode_callbacks(data, where):
    """Rebuild the ``callbacks`` parameter from :func:`encode_callbacks`'s data."""
    if data is None:
        return None
    if not isinstance(data, list):
        raise ValueError(f"{where}: the callbacks parameter is not a list")
    callbacks = []
    for i, entry in enumerate(data):
        cb = _decode_one(entry, f"{where}: callbacks[{i}]")
        label = entry.get("name")
        if label is not None and not isinstance(label, str):
            raise ValueError(f"{where}: callbacks[{i}] has a name that is not a string")
        callbacks.append(cb if label is None else (label, cb))
    return callbacks
