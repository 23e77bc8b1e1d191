"""The parameter constraints every skae estimator shares (scikit-learn's
``_parameter_constraints``); a variant adds its own to a copy."""

from torch import nn

from ._modules import ACTIVATIONS
from ._validation import Integral, Interval, Real, StrOptions

# 'exp' is the output activation of loss='poisson' only, not a user option.
_ACTIVATION_NAMES = StrOptions(set(ACTIVATIONS) - {"exp"})

BASE_CONSTRAINTS = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [_ACTIVATION_NAMES],
    "code_activation": [_ACTIVATION_NAMES],
    "output_activation": [_ACTIVATION_NAMES, None],
    "loss": [StrOptions({"squared_error", "log_loss", "poisson"})],
    "normalize": [StrOptions({"auto", "global", "feature"}), None],
    "tied_weights": ["boolean"],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "sparsity_weight": [Interval(Real, 0, None, closed="left")],
    "solver": [StrOptions({"adam", "sgd"})],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "device": [str],
    "callbacks": [list, None],
    "distributed": ["boolean"],
    "encoder": [StrOptions({"conv"}), nn.Module, None],
    "decoder": [StrOptions({"conv"}), nn.Module, None],
    "input_shape": ["array-like", None],
    "conv_channels": ["array-like", Interval(Integral, 1, None, closed="left")],
    "kernel_size": [Interval(Integral, 1, None, closed="left")],
}
