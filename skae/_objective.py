"""The training objective a net asks of its owner: loss, corruption, score.

:class:`ReconstructionObjective` is the plain autoencoder's: the
reconstruction loss plus MLP's ``alpha`` penalty and an L1 code penalty.
Every estimator inherits it (variants override a part and call ``super()``),
and StackedAE's pretraining stages are small instances of it, so that one
objective serves both. It needs ``alpha``, ``sparsity_weight`` and
``_loss_name`` on ``self``.
"""

import torch

from ._losses import ReconstructionLoss, l1_activity, l2_penalty


class ReconstructionObjective:
    """``_corrupt``, ``_loss`` (``_reconstruction_loss`` + ``_penalty``) and
    ``_score_samples_model``, as :class:`skae._net.AutoencoderNet` calls them."""

    def _corrupt(self, x):
        """Training-time input corruption; identity for a plain autoencoder."""
        return x

    def _loss(self, net, x, x_in, y, output):
        """Batch objective: mean reconstruction loss plus penalties.

        ``x`` is the clean normalised batch (the target), ``x_in`` what the
        module saw (``_corrupt(x)``), ``y`` the batch targets of supervised
        variants (else None), ``output`` is ``module(x_in)``: decoder
        pre-activations first, code second.
        """
        loss = self._reconstruction_loss(net, x, output).mean()
        penalty = self._penalty(net, x, output)
        parts = net.__dict__.get("loss_parts_")  # set by the verbose log only
        if parts is not None and net.module_.training:
            with torch.no_grad():
                parts.add(self._loss_parts(net, x, y, output), len(x))
        # No penalty: no scalar add (one kernel launch a step on a GPU).
        return loss if isinstance(penalty, float) and penalty == 0.0 else loss + penalty

    def _loss_parts(self, net, x, y, output):
        """Per-sample terms for the training log, in the units of ``score``.

        ``train_error``: minus the :meth:`_score_samples_model` of the batch
        as trained on. Called only when ``verbose`` is set.
        """
        return {"train_error": self._error_in_score_units(net.module_, output[0], x)}

    def _reconstruction_loss(self, net, x, output):
        """Per-sample reconstruction term (the skorch criterion's value)."""
        return net.criterion_(output[0], x)

    def _penalty(self, net, x, output):
        """Weight decay (``alpha``, as MLP) and code sparsity, a scalar.

        The weight decay's gradient is the optimiser's (``weight_decay`` set
        per batch by the net); its value is added here without autograd, so
        that the loss and ``loss_curve_`` are MLP's.
        """
        penalty = 0.0
        if self.alpha:
            with torch.no_grad():
                penalty = self.alpha * l2_penalty(net.module_.weights()) / net.global_rows(len(x))
        if self.sparsity_weight:
            penalty = penalty + self.sparsity_weight * l1_activity(output[1]).mean()
        return penalty

    def _score_samples_model(self, module, x, y=None):
        """Per-sample score (higher is better) for normalised ``x``.

        Minus the reconstruction error in the user's units: the sum of
        squared errors over features for ``'squared_error'``, the summed
        binary cross-entropy for ``'log_loss'``, the Poisson
        log-likelihood (``log(x!)`` included) for ``'poisson'``.
        """
        return -self._error_in_score_units(module, module(x)[0], x)

    def _error_in_score_units(self, module, decoded, x):
        """Per-sample reconstruction error of ``decoded`` against normalised
        ``x``, in the units of X (minus the score)."""
        if self._loss_name in ("log_loss", "poisson"):
            return ReconstructionLoss(self._loss_name)(decoded, x)
        diff = (module.output_activation(decoded) - x) * module.input_scale
        return diff.pow(2).sum(dim=1)
