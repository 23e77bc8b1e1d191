"""Greedy layer-wise pretraining (StackedAE's first stage).

Each layer is a one-layer (optionally denoising) autoencoder trained on the
codes of the layers below it, on the device tensor, through the one training
path (:mod:`skae._training`): no nested estimator, no copy off the device.
"""

import torch
from torch import nn

from . import _distributed, _training
from ._batches import TrainingData
from ._corruption import corrupt_batch, noise_reference
from ._modules import Autoencoder, TiedLinear
from ._objective import ReconstructionObjective
from ._rng import build_module
from ._sparse import encode_rows


class StageObjective(ReconstructionObjective):
    """The objective of one pretraining stage: reconstruction of its input
    (corrupted when ``noise`` is set) plus the estimator's penalties."""

    def __init__(self, loss, alpha, sparsity_weight, noise=None, noise_level=0.0, reference=None):
        self._loss_name = loss
        self.alpha = alpha
        self.sparsity_weight = sparsity_weight
        self.noise, self.noise_level, self.reference = noise, noise_level, reference

    def _loss_parts(self, net, x, y, output):
        # A stage rebuilds normalised data or the codes below: its log shows
        # train_loss, its objective, only.
        return {}

    def _corrupt(self, x):
        if self.noise is None:
            return x
        return corrupt_batch(x, self.noise, self.noise_level, self.reference)


def stage_module(est, n_in, n_out, first, last):
    return build_module(
        Autoencoder,
        n_in,
        n_out,
        hidden_layer_sizes=(),
        code_activation=est.code_activation if last else est.activation,
        output_activation=stage_output(est, first),
        tied_weights=est.tied_weights,
    )


def stage_output(est, first):
    """The first stage rebuilds X (the estimator's output); the others codes."""
    return est._output_activation if first else est.activation


def stage_batch_size(est, n_rows):
    """The fit's batch size rule on the stage's training rows (the fit has warned)."""
    return est._resolve_batch_size(n_rows, warn=False)


def _copy_stage(module, stage, k, n_layers, tied):
    """Stage ``k``'s encoder into encoder layer ``k``, its decoder into the
    mirror decoder layer (decoders are stacked in reverse order)."""
    encoders = module.encoder_layers()
    decoders = [m for m in module.decoder if isinstance(m, (nn.Linear, TiedLinear))]
    dst_dec, src_dec = decoders[n_layers - 1 - k], stage.decoder[0]
    with torch.no_grad():
        encoders[k].weight.copy_(stage.code.weight)
        encoders[k].bias.copy_(stage.code.bias)
        if not tied:
            dst_dec.weight.copy_(src_dec.weight)
        dst_dec.bias.copy_(src_dec.bias)


def pretrain(est, module, data, mean, scale):
    """Pretrain ``module``'s layers greedily; return each stage's loss curve.

    ``data`` is the fit's :class:`~skae._batches.TrainingData` (normalised
    device tensors and the early-stopping split): stages train on its
    training rows only and, with early stopping, stop on its held-out rows.
    Runs under the fit's seeded generator. A Ctrl-C during a stage stops the
    whole fit (a half-pretrained stack is not a model).
    """
    sizes = (data.X.shape[1], *est._hidden_sizes(), est.n_components)
    n_layers = len(sizes) - 1
    n_train = len(data.X) if data.train_rows is None else len(data.train_rows)
    batch_size = stage_batch_size(est, n_train)
    H, curves = data.X, []
    for k in range(n_layers):
        first, last = k == 0, k == n_layers - 1
        stage = stage_module(est, sizes[k], sizes[k + 1], first, last).to(H.device)
        label = f"layer {k + 1}/{n_layers}: {sizes[k]}-{sizes[k + 1]}"
        curves.append(train_stage(est, stage, data, H, (mean, scale), first, batch_size, label))
        _copy_stage(module, stage, k, n_layers, est.tied_weights)
        if not last:
            with torch.no_grad():
                H = encode_rows(stage.encode, H)
    return curves


def train_stage(est, stage, data, H, stats, first, batch_size, label):
    """Train one stage on the codes ``H``; return its loss curve.

    ``stats`` is the fit's ``(mean, scale)``; ``first`` says the stage
    rebuilds X (the estimator's loss and output) rather than codes.
    """
    objective = _stage_objective(est, data, H, *stats, first)
    net = _training.make_net(
        stage, objective, est, str(H.device), objective._loss_name, stage_output(est, first)
    )
    if est.verbose and _distributed.is_lead():
        print(f"Pretraining {label}")
    _training.train(
        net, TrainingData(H, None, data.train_rows, data.valid_rows),
        batch_size=batch_size, epochs=est.pretrain_max_iter, resume=False,
        learning_rate=est.learning_rate_init,
    )
    if net.interrupted_:
        raise KeyboardInterrupt  # the stage has already warned
    return [row["train_loss"] for row in net.history if "train_loss" in row]


def _stage_objective(est, data, H, mean, scale, first):
    noise, reference = est.noise, None
    if noise is not None:
        if first:  # in the units of X, like DenoisingAE
            reference = noise_reference(H, mean, scale)
        else:  # in the units of the codes below, from the training rows
            rows = H if data.train_rows is None else H[data.train_rows]
            reference = noise_reference(rows, torch.zeros(H.shape[1]), torch.ones(H.shape[1]))
    return StageObjective(
        est.loss if first else "squared_error",
        est.alpha,
        est.sparsity_weight,
        noise,
        est.noise_level if noise else 0.0,
        reference,
    )
