"""torch modules used by the skae estimators (no scikit-learn imports here).

Every autoencoder module follows one small contract, which the training loop
and the estimators rely on:

* ``forward(x)`` returns a tuple whose first element is the decoder's output
  *before* the output activation and whose second element is the code
  (for the VAE: ``(decoded, mean, log_var)``);
* ``encode(x)`` returns the deterministic code, ``decode(z)`` the
  reconstruction after the output activation;
* ``normalize(x)`` / ``denormalize(x)`` apply and undo the input scaling held
  in the ``input_mean`` and ``input_scale`` buffers, so the module is
  self-contained for inference.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._rng import current


class Exp(nn.Module):
    """``exp``: the output activation of ``loss='poisson'`` (log-rate -> rate)."""

    def forward(self, x):
        return torch.exp(x)


ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "exp": Exp,  # output only (loss='poisson'); not a user option
}

# Glorot & Bengio gain, as MLPRegressor uses (factor 2 for the logistic).
_GAINS = {"identity": 1.0, "logistic": math.sqrt(2.0), "tanh": 1.0, "relu": 1.0, "exp": 1.0}


class TiedLinear(nn.Module):
    """Linear map that reuses another layer's weight, transposed.

    The weight is *not* registered here: it stays a parameter of ``source``,
    so ``module.parameters()`` holds it once and the optimiser updates one
    tensor. Only the bias belongs to this layer.
    """

    def __init__(self, source):
        super().__init__()
        # Plain attribute, not a submodule: the weight has one owner.
        self.__dict__["source"] = source
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def weight(self):
        return self.source.weight.t()

    def forward(self, x):
        return torch.addmm(self.bias, x, self.source.weight)

    def extra_repr(self):
        return (
            f"in_features={self.source.out_features}, "
            f"out_features={self.source.in_features}, tied=True"
        )


# Functional forms of the activation modules for the plain inference path:
# (out of place, in place); in place only on intermediates the path allocated.
_ACTIVATION_FUNCTIONS = {
    nn.Sigmoid: (torch.sigmoid, torch.sigmoid_),
    nn.Tanh: (torch.tanh, torch.tanh_),
    nn.ReLU: (torch.relu, torch.relu_),
}


def _tied_linear(x, weight, bias):
    return torch.addmm(bias, x, weight)


# Largest |mean| / scale of a feature for which inference folds the input
# normalisation into the first layer (see Autoencoder.plain_functions).
_FOLD_MEAN_LIMIT = 8.0


def _plain_steps(layers):
    """``[(function, weight, bias)]`` computing ``layers`` op for op.

    Linear layers become ``F.linear`` / ``addmm`` on detached parameters
    (shared storage, no autograd), activations their torch functions (in
    place right after a linear layer, whose output is a fresh tensor),
    identities vanish; any other module is kept and called as is.
    """
    steps = []
    after_linear = False
    for layer in layers:
        kind = type(layer)
        if kind is nn.Linear:
            steps.append((F.linear, layer.weight.detach(), layer.bias.detach()))
        elif kind is TiedLinear:
            steps.append((_tied_linear, layer.source.weight.detach(), layer.bias.detach()))
        elif kind in _ACTIVATION_FUNCTIONS:
            out_of_place, in_place = _ACTIVATION_FUNCTIONS[kind]
            steps.append((in_place if after_linear else out_of_place, None, None))
        elif kind is not nn.Identity:
            steps.append((layer, None, None))
        else:
            continue
        after_linear = kind in (nn.Linear, TiedLinear)
    return steps


def _apply_steps(steps, x):
    for fn, weight, bias in steps:
        x = fn(x) if weight is None else fn(x, weight, bias)
    return x


def _stack(sizes, activation, last_activation):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        name = last_activation if last else activation
        if name != "identity":
            layers.append(ACTIVATIONS[name]())
    return nn.Sequential(*layers)


class NormalizedModule(nn.Module):
    """What every skae module shares: the input normalisation, as buffers
    (``input_mean`` and ``input_scale``, ``n_features`` each, so a fitted
    module is self-contained for inference), ``decode`` and ``forward``
    around the subclass's ``encode``, ``decoder`` and ``output_activation``,
    and ``weights`` for the ``alpha`` penalty.
    """

    def decode(self, z):
        return self.output_activation(self.decoder(z))

    def forward(self, x):
        code = self.encode(x)
        return self.decoder(code), code

    def _register_normalization(self, n_features):
        self.register_buffer("input_mean", torch.zeros(n_features))
        self.register_buffer("input_scale", torch.ones(n_features))

    def set_normalization(self, mean, scale):
        self.input_mean.copy_(torch.as_tensor(mean, dtype=self.input_mean.dtype))
        self.input_scale.copy_(torch.as_tensor(scale, dtype=self.input_scale.dtype))

    def normalize(self, x):
        return (x - self.input_mean) / self.input_scale

    def denormalize(self, x):
        return x * self.input_scale + self.input_mean

    def weights(self):
        """Every weight tensor once (dim >= 2; tied weights counted once), no biases."""
        seen, out = set(), []
        for p in self.parameters():
            if p.dim() >= 2 and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out


def reparameterize(mean, log_var, training):
    """``z = mean + exp(log_var / 2) * eps`` in training, ``mean`` otherwise."""
    if not training:
        return mean
    return mean + torch.exp(0.5 * log_var) * standard_normal(mean)


class Autoencoder(NormalizedModule):
    """Fully connected autoencoder ``n_features -> hidden -> n_components``.

    The decoder mirrors the encoder's hidden sizes. With ``tied_weights`` the
    decoder's weights are the encoder's, transposed.

    Parameters
    ----------
    n_features, n_components : int
        Input width and code width.
    hidden_layer_sizes : tuple of int
        Encoder hidden widths, outermost first; the decoder uses them reversed.
    activation : str
        Hidden-layer activation (a key of :data:`ACTIVATIONS`).
    code_activation : str
        Activation of the code layer.
    output_activation : str
        Activation applied by :meth:`decode` (``forward`` returns
        pre-activations for a numerically stable loss).
    tied_weights : bool
        Share encoder and decoder weights.
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(100,),
        activation="relu",
        code_activation="identity",
        output_activation="identity",
        tied_weights=False,
    ):
        super().__init__()
        hidden = tuple(int(h) for h in hidden_layer_sizes)
        self.activation = activation
        self.encoder = _stack((n_features, *hidden), activation, activation)
        self.code = nn.Linear(hidden[-1] if hidden else n_features, n_components)
        self.code_activation = ACTIVATIONS[code_activation]()
        dec_sizes = (n_components, *reversed(hidden), n_features)
        if tied_weights:
            sources = [self.code, *reversed(self._linears(self.encoder))]
            layers = []
            for i, src in enumerate(sources):
                layers.append(TiedLinear(src))
                if i < len(sources) - 1 and activation != "identity":
                    layers.append(ACTIVATIONS[activation]())
            self.decoder = nn.Sequential(*layers)
        else:
            self.decoder = _stack(dec_sizes, activation, "identity")
        self.output_activation = ACTIVATIONS[output_activation]()
        self._register_normalization(n_features)
        self._init_weights(code_activation)

    @staticmethod
    def _linears(seq):
        return [m for m in seq if isinstance(m, nn.Linear)]

    def _init_weights(self, code_activation, generator=None):
        self._code_activation_name = code_activation
        gain = _GAINS[self.activation]
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                g = _GAINS[code_activation] if layer is self.code else gain
                nn.init.xavier_uniform_(layer.weight, gain=g, generator=generator)
                nn.init.zeros_(layer.bias)

    def reset_weights(self, generator):
        """Initialise every weight from ``generator`` and reset the buffers
        (as the constructor does with torch's global generator)."""
        self._init_weights(self._code_activation_name, generator)
        for layer in self.modules():
            if isinstance(layer, TiedLinear):
                nn.init.zeros_(layer.bias)
        self.input_mean.zero_()
        self.input_scale.fill_(1.0)

    # -- the contract -----------------------------------------------------
    def encode(self, x):
        return self.code_activation(self.code(self.encoder(x)))

    def plain_functions(self):
        """``(encode, decode)`` for inference, normalisation included.

        They compute ``encode(normalize(x))`` and ``denormalize(decode(z))``
        without going through ``nn.Module.__call__`` for every layer: torch
        functions on detached parameters, so no autograd bookkeeping either.
        A one-row ``transform`` is dominated by such per-call overhead, not
        by arithmetic. The normalisation's ops go too where that is safe:
        the division by ``input_scale`` is folded into a copy of the first
        layer's weight (columns divided by the scale, in float64, then cast:
        equal up to rounding), and the centring into its bias, but only when
        no feature's ``|mean| / scale`` exceeds :data:`_FOLD_MEAN_LIMIT`
        (``W (x - m) / s`` computed as ``W x / s - W m / s`` loses about that
        factor in relative precision to cancellation); a zero mean or unit
        scale is not applied at all. Other parameters are shared, not copied.
        """
        mean, scale = self.input_mean.detach(), self.input_scale.detach()
        centre = bool(mean.any())
        rescale = not bool((scale == 1).all())
        enc = _plain_steps([*self.encoder, self.code, self.code_activation])
        dec = _plain_steps([*self.decoder, self.output_activation])
        fold = (centre or rescale) and enc[0][0] is F.linear
        fold = fold and float((mean / scale).abs().max()) <= _FOLD_MEAN_LIMIT
        if fold:
            _, weight, bias = enc[0]
            w64 = weight.double() / scale.double()
            b64 = bias.double() - w64 @ mean.double()
            folded = (F.linear, w64.to(weight.dtype), b64.to(bias.dtype))
            # A tiny scale (|X| ~ 1e-40) overflows the folded float32 weight.
            fold = bool(torch.isfinite(folded[1]).all() and torch.isfinite(folded[2]).all())
            if fold:
                enc[0] = folded

        def encode(x):
            if not fold:
                if centre:
                    x = x - mean
                if rescale:
                    x = x / scale
            return _apply_steps(enc, x)

        def decode(z):
            x = _apply_steps(dec, z)
            if rescale:
                x = x * scale
            return x + mean if centre else x

        return encode, decode

    def encoder_layers(self):
        """Encoder ``nn.Linear`` layers, input side first, code layer last."""
        return [*self._linears(self.encoder), self.code]


def standard_normal(like):
    """Standard normals shaped like ``like``, from the running fit's generator
    (:func:`skae._rng.current`; torch's global one outside a fit)."""
    return torch.randn(
        like.shape, generator=current(like.device), dtype=like.dtype, device=like.device
    )


class VariationalAutoencoder(Autoencoder):
    """Autoencoder with a diagonal Gaussian encoder, for the VAE.

    The ``code`` layer is the mean head and a second linear head,
    ``log_var``, gives the log-variance of
    ``q(z|x) = N(mean(x), diag(exp(log_var(x))))``. In training mode
    ``forward`` draws ``z = mean + exp(log_var / 2) * eps`` with ``eps``
    from the running fit's generator (:func:`skae._rng.current`; torch's
    global one outside a fit) (the reparameterisation trick); in eval
    mode ``z = mean``, so inference is deterministic. ``forward`` returns
    ``(decoded, mean, log_var)`` and ``encode`` the mean.

    The scalar buffer ``noise_var`` is the variance of a Gaussian decoder in
    the normalised space, fitted by the estimator (unused by a Bernoulli
    decoder). Parameters are those of :class:`Autoencoder`.
    """

    def __init__(self, n_features, n_components, **kwargs):
        super().__init__(n_features, n_components, **kwargs)
        self.log_var = nn.Linear(self.code.in_features, n_components)
        nn.init.xavier_uniform_(self.log_var.weight)
        nn.init.zeros_(self.log_var.bias)
        self.register_buffer("noise_var", torch.ones(()))

    def reset_weights(self, generator):
        super().reset_weights(generator)
        nn.init.xavier_uniform_(self.log_var.weight, generator=generator)
        nn.init.zeros_(self.log_var.bias)
        self.noise_var.fill_(1.0)

    def posterior(self, x):
        """Mean and log-variance of ``q(z|x)``, each ``(n_samples, n_components)``."""
        h = self.encoder(x)
        return self.code_activation(self.code(h)), self.log_var(h)

    def forward(self, x):
        mean, log_var = self.posterior(x)
        return self.decoder(reparameterize(mean, log_var, self.training)), mean, log_var
