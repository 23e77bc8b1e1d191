"""Greedy layer-wise pretraining of the built-in conv stack (StackedAE).

Each stride-2 convolution of ``encoder='conv'`` is pretrained as a one-layer
convolutional autoencoder (the convolution plus ``activation`` down, its
mirror transposed convolution up) on the feature maps of the layers below
it, then the linear code layer as a one-layer fully connected autoencoder
on the last feature maps: the same stages, objectives and training path as
the fully connected stack (:mod:`skae._pretraining`).
"""

import copy

import torch
from torch import nn

from ._custom_modules import ModularAutoencoder
from ._modules import ACTIVATIONS
from ._pretraining import stage_batch_size, stage_module, stage_output, train_stage
from ._sparse import encode_rows

_CONV = (nn.Conv1d, nn.Conv2d)
_DECONV = (nn.ConvTranspose1d, nn.ConvTranspose2d)


def _conv_stage(est, conv, deconv, in_shape, out_shape, first):
    """A one-layer conv autoencoder around copies of ``conv`` and ``deconv``."""
    encoder = nn.Sequential(
        nn.Unflatten(1, in_shape), copy.deepcopy(conv), ACTIVATIONS[est.activation](), nn.Flatten()
    )
    decoder = nn.Sequential(nn.Unflatten(1, out_shape), copy.deepcopy(deconv), nn.Flatten())
    n_in = int(torch.Size(in_shape).numel())
    output = stage_output(est, first)
    return ModularAutoencoder(encoder, decoder, n_in, 1, output_activation=output)


def pretrain_conv(est, module, data, mean, scale):
    """Pretrain ``module`` (a conv stack) greedily; return each stage's loss curve."""
    convs = [m for m in module.encoder if isinstance(m, _CONV)]
    deconvs = [m for m in module.decoder if isinstance(m, _DECONV)][::-1]
    n_train = len(data.X) if data.train_rows is None else len(data.train_rows)
    batch_size = stage_batch_size(est, n_train)
    shape = tuple(int(s) for s in est.input_shape)
    H, curves, n_stages = data.X, [], len(convs) + 1
    for k, (conv, deconv) in enumerate(zip(convs, deconvs)):
        with torch.no_grad():
            out_shape = tuple(conv(torch.zeros(1, *shape, device=conv.weight.device)).shape[1:])
        stage = _conv_stage(est, conv, deconv, shape, out_shape, k == 0).to(H.device)
        label = f"layer {k + 1}/{n_stages}: conv {shape} -> {out_shape}"
        curves.append(train_stage(est, stage, data, H, (mean, scale), k == 0, batch_size, label))
        with torch.no_grad():
            conv.load_state_dict(stage.encoder[1].state_dict())
            deconv.load_state_dict(stage.decoder[1].state_dict())
            H = encode_rows(stage.encode, H)
        shape = out_shape
    code, decode = module.encoder[-1], module.decoder[0]
    stage = stage_module(est, code.in_features, code.out_features, not convs, True).to(H.device)
    label = f"layer {n_stages}/{n_stages}: code {code.in_features}-{code.out_features}"
    curves.append(train_stage(est, stage, data, H, (mean, scale), not convs, batch_size, label))
    with torch.no_grad():
        code.load_state_dict(stage.code.state_dict())
        decode.load_state_dict(stage.decoder[0].state_dict())
    return curves
