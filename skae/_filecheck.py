"""Checks of a fitted state from outside (a file) before any of it is used.

A model file may be crafted: its weights, its optimiser's state and its
attributes are checked against the network its hyperparameters describe
before anything is allocated for that network or handed to torch (fused
optimiser kernels trust the shapes they are given). Every failure is a
ValueError naming what is wrong.
"""

import math
from numbers import Integral, Real

import numpy as np
import torch

# Optimiser settings that describe the implementation on one machine, not
# the optimisation state: a rebuilt net keeps its own.
OPTIMIZER_IMPL_KEYS = ("fused", "foreach", "capturable", "differentiable")
# Per-parameter optimiser state: the entries a step of each optimiser keeps.
_STATE_KEYS = {
    torch.optim.Adam: {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    torch.optim.SGD: {"momentum_buffer"},
}
_NON_NEGATIVE = {"exp_avg_sq", "max_exp_avg_sq"}


def expected_shapes(build, n_features):
    """``{name: (shape, dtype)}`` of the module ``build(n_features)`` makes,
    found on torch's meta device: no memory is allocated for the weights."""
    try:
        with torch.device("meta"):
            module = build(n_features)
    except (RuntimeError, ValueError, TypeError, OverflowError, IndexError) as exc:
        raise ValueError(f"the saved hyperparameters describe no network: {exc}") from None
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def check_module_state(expected, saved, name):
    """Saved weights must be finite tensors of exactly the expected shapes."""
    if not isinstance(saved, dict) or set(saved) != set(expected):
        keys = sorted(saved) if isinstance(saved, dict) else saved
        raise ValueError(
            f"the weights do not fit the network that the saved hyperparameters of "
            f"{name} describe: expected {sorted(expected)}, got {keys}"
        )
    for key, (shape, dtype) in expected.items():
        value = saved[key]
        if not torch.is_tensor(value) or tuple(value.shape) != shape or value.dtype != dtype:
            got = (tuple(value.shape), value.dtype) if torch.is_tensor(value) else type(value)
            raise ValueError(
                f"the weights do not fit the network that the saved hyperparameters "
                f"of {name} describe: {key!r} should be {shape} {dtype}, got {got}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"the saved weight {key!r} holds non-finite values")
    for key in ("input_scale", "noise_var"):
        if key in saved and not bool((saved[key] > 0).all()):
            raise ValueError(f"the saved buffer {key!r} must be positive")


def check_normalization(attributes, module_state, n_features):
    """``mean_``/``scale_`` and the module's copies of them must agree."""
    for attr, buffer in (("mean_", "input_mean"), ("scale_", "input_scale")):
        value = attributes.get(attr)
        if not (
            isinstance(value, np.ndarray)
            and value.dtype == np.float64
            and value.shape == (n_features,)
            and np.isfinite(value).all()
        ):
            raise ValueError(
                f"the fitted attribute {attr} must be a finite float64 array of "
                f"shape ({n_features},)"
            )
        copy = torch.as_tensor(value, dtype=torch.float32)
        if not torch.equal(copy, module_state[buffer]):
            raise ValueError(
                f"the fitted attribute {attr} does not match the network's "
                f"{buffer} buffer (the file was edited?)"
            )
    if not (attributes["scale_"] > 0).all():
        raise ValueError("the fitted attribute scale_ must be positive")


def check_attributes(attributes, estimator):
    """Attributes that describe the network must agree with it."""
    n_components = attributes.get("n_components_")
    if n_components != estimator.n_components:
        raise ValueError(
            f"the fitted attribute n_components_={n_components!r} does not match "
            f"n_components={estimator.n_components!r}"
        )
    curve = attributes.get("loss_curve_")
    if curve is not None and not (
        isinstance(curve, list)
        and all(isinstance(v, Real) for v in curve)
        and attributes.get("n_iter_") == len(curve)
    ):
        raise ValueError("the fitted attributes loss_curve_ and n_iter_ do not agree")
    spec = attributes.get("_fit_spec")
    if spec is not None:
        expected = estimator._module_spec(attributes["n_features_in_"])
        if not isinstance(spec, dict) or set(spec) != set(expected):
            raise ValueError("the fitted attribute _fit_spec is malformed")
        changed = sorted(k for k in expected if k != "loss" and spec[k] != expected[k])
        if changed or spec["loss"] not in ("squared_error", "log_loss"):
            raise ValueError(
                f"the fitted network's settings {changed or ['loss']} do not match "
                "the saved hyperparameters"
            )


def check_optimizer_state(optimizer, saved):
    """The saved optimiser state must fit ``optimizer`` tensor for tensor.

    Every per-parameter entry must name one of the optimiser's parameters and
    hold tensors of that parameter's shape and dtype (``step``: a scalar
    count); the hyperparameters must be this estimator's, but
    ``weight_decay``, which the net sets every batch, and ``lr``, which a
    learning-rate schedule moves (any finite non-negative rate). Returns the state to load, with this machine's implementation keys.
    """
    if not (isinstance(saved, dict) and set(saved) == {"state", "param_groups"}):
        raise ValueError("it must hold exactly 'state' and 'param_groups'")
    fresh = optimizer.state_dict()["param_groups"]
    groups = saved["param_groups"]
    if not (isinstance(groups, list) and len(groups) == len(fresh)):
        raise ValueError(f"it must hold {len(fresh)} parameter group(s)")
    params = {}
    out_groups = []
    for group, ref, live in zip(groups, fresh, optimizer.param_groups):
        if not isinstance(group, dict) or group.get("params") != ref["params"]:
            raise ValueError("its parameter groups do not list the network's parameters")
        out = dict(ref)
        for key, value in group.items():
            if key in ("params", *OPTIMIZER_IMPL_KEYS) or key not in ref:
                continue
            if key == "weight_decay":
                if not (isinstance(value, Real) and math.isfinite(value) and value >= 0):
                    raise ValueError(f"weight_decay={value!r} is not a finite decay")
                out[key] = float(value)
            elif key == "lr" and value != ref[key]:
                # A learning-rate schedule (skorch's LRScheduler) moves it;
                # a cosine decay ends at exactly 0.
                if not (isinstance(value, Real) and math.isfinite(value) and value >= 0):
                    raise ValueError(
                        f"its lr={value!r} is not learning_rate_init ({ref[key]!r}) nor "
                        "a non-negative rate a schedule could have set"
                    )
                out[key] = float(value)
            elif value != ref[key]:
                what = "learning_rate_init" if key == "lr" else "the estimator's"
                raise ValueError(
                    f"its {key}={value!r} is not {what} ({ref[key]!r})"
                    if key == "lr"
                    else f"its {key}={value!r} differs from {what} {key}={ref[key]!r}"
                )
        out_groups.append(out)
        params.update(zip(ref["params"], live["params"]))
    state = saved["state"]
    if not isinstance(state, dict):
        raise ValueError("its 'state' must be a dict")
    allowed = _STATE_KEYS.get(type(optimizer), set())
    for index, entry in state.items():
        if not isinstance(index, Integral) or index not in params:
            raise ValueError(f"its state names parameter {index!r}, which does not exist")
        _check_param_state(entry, params[index], index, allowed)
    return {"state": state, "param_groups": out_groups}


def _check_param_state(entry, param, index, allowed):
    if not isinstance(entry, dict) or not set(entry) <= allowed:
        keys = sorted(entry) if isinstance(entry, dict) else entry
        raise ValueError(f"the state of parameter {index} has unexpected entries {keys}")
    for key, value in entry.items():
        if key == "step":
            ok = (
                torch.is_tensor(value)
                and value.dim() == 0
                and value.dtype == torch.float32
                and math.isfinite(float(value))
                and float(value) >= 0
                and float(value) == int(value)
            )
            if not ok:
                raise ValueError(f"the step count of parameter {index} is {value!r}")
            continue
        if value is None and key == "momentum_buffer":
            continue
        if not (
            torch.is_tensor(value)
            and value.shape == param.shape
            and value.dtype == param.dtype
        ):
            got = (tuple(value.shape), value.dtype) if torch.is_tensor(value) else type(value)
            raise ValueError(
                f"its {key!r} for parameter {index} should be "
                f"{tuple(param.shape)} {param.dtype}, got {got}"
            )
        if not bool(torch.isfinite(value).all()) or (
            key in _NON_NEGATIVE and bool((value < 0).any())
        ):
            raise ValueError(f"its {key!r} for parameter {index} holds invalid values")
