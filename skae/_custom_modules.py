"""Autoencoders around any encoder and decoder: the conv stack and user modules.

:class:`ModularAutoencoder` keeps the skae module contract (see
:mod:`skae._modules`) around two arbitrary submodules:

* ``encoder`` maps a batch ``(n, n_features)`` (normalised) to the code
  ``(n, n_components)`` — for the VAE to ``(n, 2 * n_components)``: the
  posterior mean, then the log-variance;
* ``decoder`` maps codes ``(n, n_components)`` back to ``(n, n_features)``
  decoder *pre-activations* (the output activation, e.g. the sigmoid of
  ``loss='log_loss'``, is applied by skae).

:func:`build_module` makes one from an estimator's ``encoder``/``decoder``
parameters: the built-in convolutional stack (:func:`conv_stack`) for
``'conv'``, deep copies of the user's modules otherwise (the objects the
user passed are never trained), checked by one dry forward pass.
"""

import copy
import math
from numbers import Integral

import torch
from torch import nn

from ._modules import ACTIVATIONS, NormalizedModule, reparameterize
from ._rng import build_module as rng_build_module


class ModularAutoencoder(NormalizedModule):
    """Autoencoder ``decoder(code_activation(encoder(x)))`` from two modules.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        See the module docstring for their shapes.
    n_features, n_components : int
        Input width and code width.
    code_activation, output_activation : str
        Keys of :data:`skae._modules.ACTIVATIONS`; ``decode`` applies the
        output activation, ``forward`` returns pre-activations.
    activation_width : int or None
        Numbers one row's widest activation holds (inference sizes its
        chunks by it); ``n_features`` when None.
    """

    def __init__(
        self, encoder, decoder, n_features, n_components, code_activation="identity",
        output_activation="identity", activation_width=None,
    ):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.code_activation = ACTIVATIONS[code_activation]()
        self.output_activation = ACTIVATIONS[output_activation]()
        self.activation_width = int(activation_width or n_features)
        self._register_normalization(n_features)

    def encode(self, x):
        return self.code_activation(self.encoder(x))

    def plain_functions(self):
        """``(encode, decode)`` for inference, normalisation included."""

        def encode(x):
            return self.encode(self.normalize(x))

        def decode(z):
            return self.denormalize(self.decode(z))

        return encode, decode


class VariationalModularAutoencoder(ModularAutoencoder):
    """:class:`ModularAutoencoder` whose encoder gives ``q(z|x)``.

    The encoder's ``2 * n_components`` outputs are the posterior mean (the
    code activation applies to it) and the log-variance. ``forward`` returns
    ``(decoded, mean, log_var)``, drawing ``z`` in training mode;
    ``noise_var`` is the Gaussian decoder's variance (set by VariationalAE).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("noise_var", torch.ones(()))

    def posterior(self, x):
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return self.code_activation(mean), log_var

    def encode(self, x):
        return self.posterior(x)[0]

    def forward(self, x):
        mean, log_var = self.posterior(x)
        return self.decoder(reparameterize(mean, log_var, self.training)), mean, log_var


def _conv_classes(input_shape):
    if len(input_shape) == 2:
        return nn.Conv1d, nn.ConvTranspose1d
    return nn.Conv2d, nn.ConvTranspose2d


def _down(size, kernel_size):
    """Output length of a stride-2 convolution with padding ``kernel_size // 2``."""
    return (size + 2 * (kernel_size // 2) - kernel_size) // 2 + 1


def _up_padding(target, size, kernel_size):
    """``output_padding`` for which the transposed convolution gives ``target``."""
    return target - ((size - 1) * 2 - 2 * (kernel_size // 2) + kernel_size)


def conv_stack(input_shape, n_components, channels, kernel_size, activation, code_width=None):
    """Encoder and decoder of the built-in convolutional autoencoder.

    The encoder reshapes rows to ``input_shape`` (``(C, H, W)``: 2-D
    convolutions; ``(C, L)``: 1-D), applies one stride-2 convolution (kernel
    ``kernel_size``, padding ``kernel_size // 2``) plus ``activation`` per
    entry of ``channels``, flattens, and maps linearly to ``code_width``
    (``n_components`` by default). The decoder mirrors it: a linear layer
    plus ``activation``, then stride-2 transposed convolutions back to the
    input's shape (the last without activation), flattened.

    Returns
    -------
    encoder, decoder : torch.nn.Sequential
    activation_width : int
        Numbers in one row's widest activation.
    """
    conv, deconv = _conv_classes(input_shape)
    pad = kernel_size // 2
    sizes = [tuple(input_shape[1:])]
    widths = [input_shape[0], *channels]
    encoder = [nn.Unflatten(1, tuple(input_shape))]
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        encoder.append(conv(c_in, c_out, kernel_size, stride=2, padding=pad))
        encoder.append(ACTIVATIONS[activation]())
        sizes.append(tuple(_down(s, kernel_size) for s in sizes[-1]))
    inner = (widths[-1], *sizes[-1])
    flat = math.prod(inner)
    encoder += [nn.Flatten(), nn.Linear(flat, code_width or n_components)]
    decoder = [nn.Linear(n_components, flat), ACTIVATIONS[activation](), nn.Unflatten(1, inner)]
    for i in reversed(range(len(channels))):
        out_pad = tuple(
            _up_padding(t, s, kernel_size) for t, s in zip(sizes[i], sizes[i + 1])
        )
        decoder.append(
            deconv(widths[i + 1], widths[i], kernel_size, stride=2, padding=pad,
                   output_padding=out_pad)
        )
        if i:
            decoder.append(ACTIVATIONS[activation]())
    decoder.append(nn.Flatten())
    width = max(
        math.prod(input_shape), *(c * math.prod(s) for c, s in zip(widths, sizes))
    )
    return nn.Sequential(*encoder), nn.Sequential(*decoder), width


def build_module(est, n_features, variational, module_class=None):
    """The module for ``est.encoder``/``est.decoder`` (not both None).

    ``'conv'`` builds :func:`conv_stack` from ``input_shape``,
    ``conv_channels`` and ``kernel_size``; modules are deep-copied (float32)
    and checked with a dry forward pass on 2 rows. ``module_class`` (called
    as :class:`ModularAutoencoder` is) replaces the default wrapper, e.g. for
    SemanticHashing's binary code.
    """
    cls = module_class or (
        VariationalModularAutoencoder if variational else ModularAutoencoder
    )
    k = est.n_components
    code_width = 2 * k if variational else k
    output = est._output_activation
    if est.encoder == "conv" or est.decoder == "conv":
        def make():
            encoder, decoder, width = conv_stack(
                _shape(est.input_shape), k, _channels(est.conv_channels),
                int(est.kernel_size), est.activation, code_width,
            )
            return cls(encoder, decoder, n_features, k, est.code_activation, output, width)

        # torch's default initialisation, from the fit's generator (skae._rng).
        return rng_build_module(make)
    encoder = copy.deepcopy(est.encoder).float()
    decoder = copy.deepcopy(est.decoder).float()
    module = cls(encoder, decoder, n_features, k, "identity", output)
    check_shapes(module, n_features, k, code_width)
    return module


def _shape(input_shape):
    return tuple(int(s) for s in input_shape)


def _channels(conv_channels):
    if isinstance(conv_channels, Integral):
        return (int(conv_channels),)
    return tuple(int(c) for c in conv_channels)


def _dry_run(part, name, x, expected):
    try:
        out = part(x)
    except Exception as exc:  # the user's module: any failure is a bad fit
        raise ValueError(
            f"The {name} module fails on a batch of shape {tuple(x.shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    if shape != expected:
        raise ValueError(
            f"The {name} module maps a batch of shape {tuple(x.shape)} to {shape}; "
            f"skae needs {expected} (see 'Bring your own module' in the user guide)."
        )


def check_shapes(module, n_features, n_components, code_width):
    """One dry forward pass on 2 rows (eval mode, no autograd): clear errors."""
    was_training = module.training
    module.eval()
    # Where the user's modules live (they are moved to the fit's device after).
    device = next(module.parameters(), module.input_mean).device
    try:
        with torch.no_grad():
            x = torch.zeros(2, n_features, device=device)
            _dry_run(module.encoder, "encoder", x, (2, code_width))
            z = torch.zeros(2, n_components, device=device)
            _dry_run(module.decoder, "decoder", z, (2, n_features))
    finally:
        module.train(was_training)


def check_module_params(est, n_features):
    """Fit-time checks of ``encoder``, ``decoder``, ``input_shape``, ... ."""
    enc, dec = est.encoder, est.decoder
    if enc is None and dec is None:
        return
    conv = "conv" in (enc, dec)
    if conv and not all(p in ("conv", None) for p in (enc, dec)):
        raise ValueError(
            "encoder='conv' builds both halves: set decoder to 'conv' or None, "
            f"got encoder={enc!r}, decoder={dec!r}."
        )
    if not conv and not all(isinstance(p, nn.Module) for p in (enc, dec)):
        raise ValueError(
            "A user encoder needs a user decoder and vice versa: pass two "
            f"torch.nn.Module instances, got encoder={type(enc).__name__}, "
            f"decoder={type(dec).__name__}."
        )
    if est.tied_weights:
        raise ValueError(
            "tied_weights=True needs the built-in fully connected network "
            f"(encoder=None and decoder=None), got encoder={enc!r}."
        )
    if conv:
        _check_conv_params(est, n_features)


def _check_conv_params(est, n_features):
    shape = est.input_shape
    if shape is None:
        raise ValueError(
            "encoder='conv' needs input_shape, e.g. input_shape=(1, 28, 28) for "
            "28x28 grey images (X stays 2-D, one flattened image a row)."
        )
    shape = tuple(shape)
    if len(shape) not in (2, 3) or not all(isinstance(s, Integral) and s > 0 for s in shape):
        raise ValueError(
            "input_shape must be (channels, height, width) or (channels, length) "
            f"of positive integers, got input_shape={est.input_shape!r}."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"input_shape={shape} holds {math.prod(shape)} values per sample, but X "
            f"has n_features={n_features}."
        )
    channels = _channels(est.conv_channels)
    if not channels or min(channels) < 1:
        raise ValueError(
            f"conv_channels must be positive integers, got {est.conv_channels!r}."
        )
