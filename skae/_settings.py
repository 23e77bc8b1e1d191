"""What the hyperparameters mean for the data at hand.

Resolved settings are read from the hyperparameters on demand and never
written back (scikit-learn's rule), and data-dependent checks raise a
ValueError that names the parameter and the values.
"""

import warnings
from numbers import Integral

import numpy as np

from ._custom_modules import check_module_params
from ._normalization import normalization_stats
from ._poisson import check_counts
from ._validation import (
    check_float32_range,
    check_log_loss_settings,
    check_param_values,
    check_unit_interval,
    detached,
    validate_data,
)
from ._warnings import user_stacklevel


class ResolvedSettings:
    """Data-dependent checks, fit-data validation and resolved hyperparameters."""

    def _check_params(self, X):
        """Data-dependent checks; raise ValueError naming parameter and values."""
        n_samples, n_features = X.shape
        check_param_values(self)
        if self.n_components > n_features:
            raise ValueError(
                f"n_components={self.n_components} must be between 1 and "
                f"n_features={n_features}."
            )
        hidden = np.asarray(self.hidden_layer_sizes).ravel()
        if hidden.size and (
            not np.issubdtype(hidden.dtype, np.integer) or np.any(hidden <= 0)
        ):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        if self.loss == "log_loss":
            check_log_loss_settings(self.output_activation, self.normalize)
            check_unit_interval(X, "needs")
        if self.loss == "poisson":
            check_log_loss_settings(self.output_activation, self.normalize, self.loss)
            check_counts(X, "needs")
        check_module_params(self, n_features)
        if self.early_stopping and n_samples < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples, got n_samples={n_samples}."
            )
        check_float32_range(X)

    def _module_spec(self, n_features):
        """The settings that fix the network's shape (warm starts must keep them)."""
        return {
            "n_features": n_features,
            "n_components": self.n_components,
            "hidden_layer_sizes": self._hidden_sizes(),
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output_activation": self._output_activation,
            "tied_weights": self.tied_weights,
            "loss": self.loss,
            **self._network_spec(),
        }

    def _network_spec(self):
        """The encoder/decoder settings, only when they replace the MLP (so
        that the spec of a fully connected model is what it always was)."""
        if self.encoder is None and self.decoder is None:
            return {}
        shape = None if self.input_shape is None else tuple(self.input_shape)
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "input_shape": shape,
            "conv_channels": self.conv_channels,
            "kernel_size": self.kernel_size,
        }

    def _hidden_sizes(self):
        if isinstance(self.hidden_layer_sizes, Integral):
            return (int(self.hidden_layer_sizes),)
        return tuple(int(h) for h in self.hidden_layer_sizes)

    @property
    def _loss_name(self):
        # The loss the model was fitted with: scoring a fitted model must not
        # change when the hyperparameter is set to something else afterwards.
        spec = getattr(self, "_fit_spec", None)
        return spec["loss"] if spec is not None else self.loss

    @property
    def _output_activation(self):
        if self.output_activation is not None:
            return self.output_activation
        return {"log_loss": "logistic", "poisson": "exp"}.get(self.loss, "identity")

    def _normalization(self):
        if self.normalize == "auto":
            return "global" if self.loss == "squared_error" else None
        return self.normalize

    def _normalization_stats(self, X):
        """Per-feature mean and divisor (float64) for ``normalize``, from raw X."""
        return normalization_stats(X, self._normalization())

    def _n_valid(self, n_samples):
        n_valid = max(1, int(round(self.validation_fraction * n_samples)))
        if n_valid >= n_samples:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out {n_valid} "
                f"of n_samples={n_samples} rows, leaving none to train on; lower "
                "validation_fraction or pass more samples."
            )
        return n_valid

    def _resolve_batch_size(self, n_samples, warn=True):
        """``batch_size`` for ``n_samples`` rows: 'auto' is min(200, n), larger
        sizes are clipped (with a warning unless ``warn`` is False)."""
        if self.batch_size == "auto":
            return min(200, n_samples)
        if warn and self.batch_size > n_samples:
            warnings.warn(
                f"Got batch_size={self.batch_size} larger than n_samples="
                f"{n_samples}; it is clipped to {n_samples}.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return min(self.batch_size, n_samples)

    def _validate_fit_data(self, X, y, reset):
        """Validated ``(X, y)``; y is None for the unsupervised variants.

        float64 and float32 are kept; anything else (uint8 images, ints)
        becomes float32, what the network trains on: half the memory of a
        float64 copy, and the same model (integers up to 2**24 are exact).
        """
        X = validate_data(
            self, detached(X), reset=reset, dtype=[np.float32, np.float64],
            accept_sparse=["csr", "csc"],
        )
        return X, None

    def _to_target_tensor(self, y, device):
        """Targets as a device tensor for supervised variants (None here)."""
        return None

    def _check_fit(self, X, incremental, continuing):
        """Data-dependent checks, and that a warm start keeps the network's shape."""
        self._check_params(X)
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True; use fit, or "
                "set early_stopping=False."
            )
        if continuing:
            spec = self._module_spec(X.shape[1])
            if spec != self._fit_spec:
                keys = spec.keys() | self._fit_spec.keys()
                changed = sorted(k for k in keys if spec.get(k) != self._fit_spec.get(k))
                raise ValueError(
                    f"Cannot continue training after changing {', '.join(changed)}: "
                    "the network's shape depends on them. Refit with "
                    "warm_start=False."
                )
