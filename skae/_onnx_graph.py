"""ONNX graphs of fitted skae networks, built with ONNX operators.

The graph is written from a list of steps (:meth:`_Graph.steps`): ``Gemm``
layers, activations, and ``("emit", fn)`` steps that write their own nodes
(:mod:`skae._onnx_modules`: convolutions, inlined torch.onnx exports). This
module builds the steps of the fully connected network (:func:`_mlp`) and,
for any network, the normalisation (``Sub``/``Div``, or folded into the
first layer under the same rule as the estimator's own inference path), the
decoder's denormalisation, ``score_samples`` and the VAE's ELBO. See
:mod:`skae._onnx` for the measurements behind building rather than
exporting and for the registration with skl2onnx. onnx is imported only
when a model is converted (``skae._onnx`` imports this module lazily).
"""

import numpy as np
import torch
from onnx import TensorProto, numpy_helper
from torch import nn

from ._modules import _FOLD_MEAN_LIMIT, Exp, TiedLinear
from ._variational import _score_draws


# ----------------------------------------------------------------------
# the fitted network as a list of steps
# ----------------------------------------------------------------------
def _activation_op(layer):
    """ONNX op type of an activation module, '' for identity, None if unknown."""
    if type(layer) is nn.Identity:
        return ""
    ops = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", Exp: "Exp"}
    return ops.get(type(layer))


def _named(prefix, seq):
    return [(f"{prefix}[{i}]", layer) for i, layer in enumerate(seq)]


def _steps(layers):
    """``[("gemm", W (in, out) float64, b float64) | ("act", op_type)]``.

    ``layers`` are ``(name, module)`` pairs; the name goes into the error
    message. Raises TypeError for a layer that is neither linear nor a
    known activation.
    """
    steps = []
    for where, layer in layers:
        if type(layer) is nn.Linear:
            w = layer.weight.detach().cpu().double().numpy().T
            b = layer.bias.detach().cpu().double().numpy()
            steps.append(("gemm", w, b))
        elif type(layer) is TiedLinear:
            # x @ source.weight: the source's (out, in) weight is this
            # layer's (in, out).
            w = layer.source.weight.detach().cpu().double().numpy()
            b = layer.bias.detach().cpu().double().numpy()
            steps.append(("gemm", w, b))
        else:
            op = _activation_op(layer)
            if op is None:
                raise TypeError(
                    f"Cannot convert {where} to ONNX: layer type "
                    f"{type(layer).__module__}.{type(layer).__qualname__} is not "
                    "nn.Linear, TiedLinear, nn.ReLU, nn.Sigmoid, nn.Tanh, Exp or "
                    "nn.Identity."
                )
            if op:
                steps.append(("act", op))
    return steps


class _MLP:
    """What the ONNX graph of a fitted skae MLP autoencoder needs.

    ``fold``: the normalisation may be folded into the first layer, as
    ``Autoencoder.plain_functions`` does.
    """

    fold = True

    def __init__(self, module):
        self.hidden = _steps(_named("module_.encoder", module.encoder))
        self.head = _steps(
            [("module_.code", module.code), ("module_.code_activation", module.code_activation)]
        )
        self.encode = self.hidden + self.head
        self.decode = _steps(
            _named("module_.decoder", module.decoder)
            + [("module_.output_activation", module.output_activation)]
        )
        self.variational = hasattr(module, "log_var")
        if self.variational:
            self.log_var = _steps([("module_.log_var", module.log_var)])
            self.noise_var = float(module.noise_var)


def _mlp(estimator):
    module = estimator.module_
    needed = ("encoder", "code", "code_activation", "decoder", "output_activation")
    missing = [name for name in needed if not hasattr(module, name)]
    if missing:
        raise TypeError(
            f"Cannot convert {type(estimator).__name__} to ONNX: its module_ "
            f"({type(module).__module__}.{type(module).__qualname__}) is not a skae "
            f"MLP autoencoder (it has no {', '.join(missing)}) nor a network built "
            "from the encoder/decoder parameters; pass your torch modules as "
            "encoder= and decoder= instead of replacing module_."
        )
    return _MLP(module)


# ----------------------------------------------------------------------
# ONNX graph construction
# ----------------------------------------------------------------------
class _Graph:
    """Adds initializers and nodes in one dtype to a skl2onnx container."""

    def __init__(self, scope, container, dtype):
        self.scope, self.container = scope, container
        self.dtype = np.dtype(dtype)
        self.proto_type = TensorProto.DOUBLE if self.dtype == np.float64 else TensorProto.FLOAT

    def const(self, hint, value, dtype=None):
        name = self.scope.get_unique_variable_name(hint)
        arr = np.ascontiguousarray(value, dtype=dtype or self.dtype)
        tensor = numpy_helper.from_array(arr, name)
        self.container.add_initializer(name, tensor.data_type, list(arr.shape), tensor)
        return name

    def op(self, op_type, inputs, output=None, **attrs):
        out = output or self.scope.get_unique_variable_name(f"skae_{op_type.lower()}")
        name = self.scope.get_unique_operator_name(f"Skae{op_type}")
        self.container.add_node(op_type, list(inputs), [out], name=name, **attrs)
        return out

    def steps(self, x, steps):
        """Write ``steps`` on ``x``: ``("gemm", w, b)``, ``("act", op_type)``
        or ``("emit", fn)``, where ``fn(graph, x)`` writes its own nodes
        (:mod:`skae._onnx_modules`: convolutions, user modules)."""
        for step in steps:
            if step[0] == "emit":
                x = step[1](self, x)
            elif step[0] == "gemm":
                _, w, b = step
                # The weight stored (out, in) with transB=1, torch's layout:
                # one-row latency in onnxruntime was 36 us with the (in, out)
                # layout and 21 us with this one (784-256-30).
                x = self.op(
                    "Gemm", [x, self.const("skae_w", w.T), self.const("skae_b", b)], transB=1
                )
            else:
                x = self.op(step[1], [x])
        return x

    def row_sum(self, x, axis=1):
        """Sum over ``axis``, which is dropped."""
        if self.container.target_opset >= 13:
            axes = self.const("skae_axes", [axis], dtype=np.int64)
            return self.op("ReduceSum", [x, axes], keepdims=0)
        return self.op("ReduceSum", [x], axes=[axis], keepdims=0)

    def bce_with_logits(self, z, x):
        """Elementwise ``max(z, 0) - z x + log(1 + exp(-|z|))``, stable."""
        soft = self.op("Exp", [self.op("Neg", [self.op("Abs", [z])])])
        soft = self.op("Log", [self.op("Add", [soft, self.const("skae_one", 1.0)])])
        linear = self.op("Sub", [self.op("Relu", [z]), self.op("Mul", [z, x])])
        return self.op("Add", [linear, soft])


def _normalisation(estimator, dtype):
    """``(mean, scale)`` in float64, exact for float64 graphs.

    A float32 graph uses the float32 statistics the network computes with
    (``mean_`` and ``scale_`` rounded to float32, as the module's buffers).
    """
    mean = np.asarray(estimator.mean_, dtype=np.float64)
    scale = np.asarray(estimator.scale_, dtype=np.float64)
    if np.dtype(dtype) == np.float32:
        mean = mean.astype(np.float32).astype(np.float64)
        scale = scale.astype(np.float32).astype(np.float64)
    return mean, scale


def _encode(g, x, estimator, net):
    """The code of raw input ``x``; with ``net.fold`` the normalisation may be folded."""
    mean, scale = _normalisation(estimator, g.dtype)
    centre, rescale = bool(mean.any()), not bool((scale == 1).all())
    steps = list(net.encode)
    if (
        net.fold
        and (centre or rescale)
        and steps[0][0] == "gemm"
        and float(np.abs(mean / scale).max()) <= _FOLD_MEAN_LIMIT
    ):
        _, w, b = steps[0]
        w = w / scale[:, None]
        steps[0] = ("gemm", w, b - mean @ w)
    else:
        if centre:
            x = g.op("Sub", [x, g.const("skae_mean", mean)])
        if rescale:
            x = g.op("Div", [x, g.const("skae_scale", scale)])
    return g.steps(x, steps)


def _denormalise(g, x, estimator, output=None):
    mean, scale = _normalisation(estimator, g.dtype)
    centre, rescale = bool(mean.any()), not bool((scale == 1).all())
    if rescale:
        x = g.op("Mul", [x, g.const("skae_scale", scale)], output=None if centre else output)
    if centre:
        x = g.op("Add", [x, g.const("skae_mean", mean)], output=output)
    if x != output and output is not None:
        x = g.op("Identity", [x], output=output)
    return x


def _normalise(g, x, estimator):
    """``(x - mean) / scale`` as separate ops (the score needs it unfolded)."""
    mean, scale = _normalisation(estimator, g.dtype)
    if mean.any():
        x = g.op("Sub", [x, g.const("skae_mean", mean)])
    if not (scale == 1).all():
        x = g.op("Div", [x, g.const("skae_scale", scale)])
    return x


def _score_samples(g, x, estimator, net, output):
    """Minus the reconstruction error per sample, as ``score_samples``."""
    if net.variational:
        return _elbo(g, x, estimator, net, output)
    loss = getattr(estimator, "_loss_name", estimator.loss)
    _, scale = _normalisation(estimator, g.dtype)
    xn = _normalise(g, x, estimator)
    code = g.steps(xn, net.encode)
    decode = list(net.decode)
    if loss == "log_loss":
        # Binary cross-entropy from the logits (the output activation is the
        # logistic), summed over features.
        bce = g.bce_with_logits(g.steps(code, _logits(decode)), xn)
        return g.op("Neg", [g.row_sum(bce)], output=output)
    recon = g.steps(code, decode)
    diff = g.op("Sub", [recon, xn])
    if not (scale == 1).all():
        diff = g.op("Mul", [diff, g.const("skae_scale", scale)])
    return g.op("Neg", [g.row_sum(g.op("Mul", [diff, diff]))], output=output)


def _elbo(g, x, estimator, net, output):
    """VariationalAE's per-sample ELBO with its fixed, moment-matched draws.

    The ``L`` draws ``eps`` are a constant ``(L, 1, k)`` tensor: every sample
    is decoded at ``mean + std * eps_l`` as one ``(L * n, k)`` batch, the
    log-likelihoods are averaged over ``l`` and the closed-form KL is
    subtracted, as ``VariationalAE.score_samples`` does.
    """
    _, scale = _normalisation(estimator, g.dtype)
    n_features = len(scale)
    xn = _normalise(g, x, estimator)
    h = g.steps(xn, net.hidden)
    mean = g.steps(h, net.head)
    log_var = g.steps(h, net.log_var)
    k = estimator.n_components_
    eps = _score_draws(k, torch.zeros((), dtype=torch.float64)).numpy()
    n_draws = len(eps)
    std = g.op("Exp", [g.op("Mul", [log_var, g.const("skae_half", 0.5)])])
    noise = g.op("Mul", [std, g.const("skae_eps", eps[:, None, :])])
    z = g.op("Reshape", [g.op("Add", [mean, noise]), g.const("skae_shape", [-1, k], np.int64)])
    decoded = g.op(
        "Reshape",
        [
            g.steps(z, net.decode if _gaussian(estimator) else _logits(net.decode)),
            g.const("skae_shape", [n_draws, -1, n_features], np.int64),
        ],
    )
    if _gaussian(estimator):
        diff = g.op("Sub", [decoded, xn])
        sse = g.row_sum(g.op("Mul", [diff, diff]), axis=2)
        var = np.float64(np.asarray(net.noise_var, dtype=g.dtype))
        log_norm = n_features * np.log(2 * np.pi * var)
        log_jacobian = np.log(scale.astype(g.dtype).astype(np.float64)).sum()
        # -0.5 * (sse / var + log_norm) - log_jacobian
        log_lik = g.op("Div", [sse, g.const("skae_var", var)])
        log_lik = g.op("Add", [log_lik, g.const("skae_lognorm", log_norm)])
        log_lik = g.op("Mul", [log_lik, g.const("skae_mhalf", -0.5)])
        log_lik = g.op("Sub", [log_lik, g.const("skae_logjac", log_jacobian)])
    else:
        log_lik = g.op("Neg", [g.row_sum(g.bce_with_logits(decoded, xn), axis=2)])
    expected = g.op("Div", [g.row_sum(log_lik, axis=0), g.const("skae_ndraws", n_draws)])
    # KL = 0.5 * sum(mean^2 + exp(log_var) - log_var - 1)
    kl_terms = g.op(
        "Sub",
        [
            g.op("Add", [g.op("Mul", [mean, mean]), g.op("Exp", [log_var])]),
            g.op("Add", [log_var, g.const("skae_one", 1.0)]),
        ],
    )
    kl = g.op("Mul", [g.row_sum(kl_terms), g.const("skae_half", 0.5)])
    return g.op("Sub", [expected, kl], output=output)


def _gaussian(estimator):
    # The VAE's likelihood follows the ``loss`` hyperparameter.
    return estimator.loss != "log_loss"


def _logits(decode):
    """Decoder steps without the final logistic (the Bernoulli decoder's)."""
    return decode[:-1] if decode and decode[-1] == ("act", "Sigmoid") else decode
