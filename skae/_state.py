"""One protocol for an estimator's fitted state: pickling and ``.skae`` files.

:meth:`FittedStateMixin._get_fitted_state` returns everything ``fit``
learned as plain values (tensors on the CPU); ``_set_fitted_state`` rebuilds
the estimator from it, building the module from the hyperparameters (never
unpickling one). ``__getstate__``/``__setstate__`` and
:mod:`skae._persistence` both go through these two methods.
"""

import warnings

import torch

from . import _filecheck, _persistence
from ._callback_codec import encode_callbacks
from ._inference import InferenceCache
from ._validation import check_is_fitted, map_location


def _cpu(value):
    """``value`` with every tensor (also inside dicts and lists) on the CPU."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(v) for v in value)
    return value


class FittedStateMixin:
    """Pickling and saving through ``_get_fitted_state``/``_set_fitted_state``.

    The estimator provides ``module_``, ``_net``, ``device_``,
    ``_build_module``, ``_make_net`` and ``_transient_attributes`` (fitted
    attributes rebuilt from the others, never stored).
    """

    def _get_fitted_state(self):
        """Everything fit learned, as plain values with tensors on the CPU.

        ``attributes`` (every fitted attribute but the transient ones),
        ``module_state`` (the module's ``state_dict``), ``optimizer_state``
        (the optimiser's, for ``partial_fit`` to resume) and ``device``.
        """
        params = self.get_params(deep=False)
        skip = self._transient_attributes
        return {
            "attributes": {
                k: _cpu(v)
                for k, v in vars(self).items()
                if k not in params and k not in skip and not k.startswith("__")
            },
            "module_state": _cpu(dict(self.module_.state_dict())),
            "optimizer_state": _cpu(self._net.optimizer_.state_dict()),
            "device": self.device_,
        }

    def _set_fitted_state(self, state, device):
        """Rebuild the fitted estimator from :meth:`_get_fitted_state`'s dict.

        The module is built from the hyperparameters (never unpickled) and
        must take the saved weights exactly; the weights, the optimiser state
        and the attributes that duplicate them are checked first (see
        :mod:`skae._filecheck`); a mismatch raises a ValueError.
        """
        attributes, module_state = state["attributes"], state["module_state"]
        for key in attributes:
            self._check_attribute_name(key)
        n_features = attributes.get("n_features_in_")
        if type(n_features) is not int or n_features < 1:
            raise ValueError("the fitted state has no positive integer n_features_in_.")
        for key, value in attributes.items():  # the module's shape may need them
            setattr(self, key, value)
        expected = _filecheck.expected_shapes(self._build_module, n_features)
        _filecheck.check_module_state(expected, module_state, type(self).__name__)
        _filecheck.check_normalization(attributes, module_state, n_features)
        _filecheck.check_attributes(attributes, self)
        # Built without a draw from torch's global generator (skae._rng).
        module = self._build_module(n_features)
        module.load_state_dict(module_state, strict=True)
        net = self._make_net(module.to(device).eval(), device)
        net.initialize()
        if state.get("optimizer_state") is not None:
            _load_optimizer_state(net.optimizer_, state["optimizer_state"])
        net.module_.eval()
        self._net, self.module_, self.device_ = net, net.module_, device
        self._inference = InferenceCache()

    def _check_attribute_name(self, key):
        params = self.get_params(deep=False)
        if (
            not isinstance(key, str)
            or not key.isidentifier()
            or key.startswith("__")
            or key in params
            or key in self._transient_attributes
            or hasattr(type(self), key)
        ):
            raise ValueError(f"the fitted state sets a forbidden attribute {key!r}.")

    def __getstate__(self):
        state = dict(super().__getstate__())
        if not self.__sklearn_is_fitted__():
            state.pop("_inference", None)
            return state
        fitted = self._get_fitted_state()
        kept = {
            k: v
            for k, v in state.items()
            if k not in fitted["attributes"] and k not in self._transient_attributes
        }
        kept["_fitted_state"] = fitted
        return kept

    def __setstate__(self, state):
        state = dict(state)
        fitted = state.pop("_fitted_state", None)
        super().__setstate__(state)
        if fitted is not None:
            # A model fitted on a GPU unpickles on the CPU when none is here.
            device = map_location(fitted["device"])
            if device != fitted["device"]:
                warnings.warn(
                    f"The model was fitted on {fitted['device']!r}, which is not "
                    f"available here; it is unpickled on {device!r}.",
                    UserWarning,
                    stacklevel=2,
                )
            self._set_fitted_state(fitted, device)


    def save(self, path):
        """Save the fitted estimator to ``path`` without pickle.

        The file is a ``.npz`` archive: the hyperparameters and fitted
        attributes as JSON, the network's weights and the optimiser's state
        as plain numeric arrays, with the skae version, a format version and
        checksums. :func:`skae.load` rebuilds the estimator from it and never
        runs code from the file, so a model from an untrusted source is safe
        to load. Outputs after loading are identical; a model fitted on a GPU
        loads on a CPU-only machine. ``callbacks`` are saved when they are
        skorch's built-in callbacks with plain parameters (see
        ``skae._callback_codec``); others raise a ValueError that names them.
        A model with a user-supplied ``encoder``/``decoder`` module cannot be
        saved (its class cannot be rebuilt without running code): pickle it
        instead. The built-in networks (fully connected, ``encoder='conv'``)
        save and load.

        Parameters
        ----------
        path : str or path-like
            Destination file; written atomically (a temporary file in the
            same folder, then renamed).

        See Also
        --------
        skae.load : Load a saved estimator.
        """
        check_is_fitted(self)
        cls = type(self)
        if cls.__name__.startswith("_") or not cls.__module__.startswith("skae."):
            raise TypeError(
                f"{cls.__qualname__} is not one of skae's public estimators; only "
                "those can be saved (skae.load rebuilds a class by its name)."
            )
        params = self.get_params(deep=False)
        user = [k for k in ("encoder", "decoder") if isinstance(params.get(k), torch.nn.Module)]
        if user:
            raise TypeError(
                f"Cannot save a model with a user-supplied {' and '.join(user)} module: "
                "skae.load rebuilds networks from hyperparameters and never runs "
                "code from a file, and an arbitrary torch.nn.Module class cannot "
                "be rebuilt without running its code. Pickle the estimator "
                "(pickle/joblib) instead, from a trusted source only."
            )
        params["callbacks"] = encode_callbacks(params.get("callbacks"))
        _persistence.write(path, cls.__name__, params, self._get_fitted_state())


def _load_optimizer_state(optimizer, saved):
    """Load a saved optimiser state once it is checked to fit ``optimizer``."""
    try:
        checked = _filecheck.check_optimizer_state(optimizer, saved)
        optimizer.load_state_dict(checked)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"the optimiser state does not fit the network: {exc}") from None
