"""Loss terms as pure tensor functions.

Convention used throughout skae: a reconstruction term or a penalty is a
*per-sample* quantity (summed over features or code units), and the training
objective averages it over the batch. A penalty weight therefore means the
same thing whatever the batch or data size. The one exception is ``alpha``,
which follows :class:`~sklearn.neural_network.MLPRegressor` exactly
(``0.5 * alpha * ||W||^2`` divided by the batch size).
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._modules import ACTIVATIONS


def squared_error(reconstruction, target):
    """Per-sample sum of squared errors, shape ``(n_samples,)``."""
    return (reconstruction - target).pow(2).sum(dim=1)


def log_loss_with_logits(logits, target):
    """Per-sample binary cross-entropy summed over features.

    Computed from the decoder's pre-activations (logits) for numerical
    stability; equals ``-sum(x log p + (1 - x) log(1 - p))`` with
    ``p = sigmoid(logits)``.
    """
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(
        dim=1
    )


def l2_penalty(weights):
    """``0.5 * sum ||W||_F^2`` over the given weight matrices (no biases)."""
    return 0.5 * sum(w.pow(2).sum() for w in weights)


def l1_activity(code):
    """Per-sample L1 norm of the code, shape ``(n_samples,)``."""
    return code.abs().sum(dim=1)


def gaussian_kl(mean, log_var):
    """Per-sample ``KL(N(mean, diag(exp(log_var))) || N(0, I))`` in nats.

    Closed form ``0.5 * sum(mean^2 + var - log_var - 1)`` over code units.
    """
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1.0).sum(dim=1)


class ReconstructionLoss(nn.Module):
    """Per-sample reconstruction loss from the decoder's pre-activations.

    This is the skorch ``criterion`` of every skae net.

    Parameters
    ----------
    loss : {'squared_error', 'log_loss'}
        ``'squared_error'`` applies ``output_activation`` and sums squared
        errors; ``'log_loss'`` is Bernoulli cross-entropy on logits.
    output_activation : str
        Name in :data:`skae._modules.ACTIVATIONS`; ignored for ``'log_loss'``
        (whose output activation is always the logistic sigmoid).
    """

    def __init__(self, loss="squared_error", output_activation="identity"):
        super().__init__()
        self.loss = loss
        self.output_activation = ACTIVATIONS[output_activation]()

    def forward(self, decoded, target):
        if self.loss == "log_loss":
            return log_loss_with_logits(decoded, target)
        return squared_error(self.output_activation(decoded), target)
