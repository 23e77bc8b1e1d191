"""ONNX graphs of conv-stack and user-module networks (``encoder=...``).

:func:`network` tells :mod:`skae._onnx` what a fitted estimator's graph is
built from: the MLP description of :mod:`skae._onnx_graph` for the built-in
fully connected network, :class:`_Modular` for a
:class:`~skae._custom_modules.ModularAutoencoder`. Both are lists of steps
that :meth:`skae._onnx_graph._Graph.steps` writes as ONNX nodes, so the
normalisation, the score and the VAE's ELBO are shared.

Two routes, chosen by measurement (torch 2.13, onnxruntime 1.32, one
thread, on this shared 2-core machine under load, so ratios of runs side
by side in one process, medians of repeats):

* the built-in conv stack (``encoder='conv'``) is written by the builder:
  its layers become ``Reshape``, ``Conv``, ``ConvTranspose`` (with
  ``output_padding``), ``Flatten`` and ``Gemm`` nodes. For an MNIST conv
  stack (``input_shape=(1, 28, 28)``, ``conv_channels=(32, 64)``, 30
  components), ``to_onnx`` took 17 ms (30 ms on the first call) this way
  and 66 ms (103 ms first) through ``torch.onnx.export(dynamo=False)``, a
  ratio of 0.26 (0.20 in ``benchmarks/bench_inference.py``); the traced
  graph has 26 nodes against 10 (``nn.Unflatten`` becomes shape arithmetic
  instead of one ``Reshape``). onnxruntime ran the two graphs equally fast
  (ratios 0.94 for one row, 0.98-1.00 for 2,000 rows) and both agreed with
  ``transform`` to 5e-7. The builder also needs nothing beyond skl2onnx and
  no deprecated exporter.
* a user-supplied ``torch.nn.Module`` can only be exported by torch:
  ``torch.onnx.export`` with ``dynamo=False``, the TorchScript tracer. In
  torch 2.13 it is still there (no longer the default since 2.9, it warns
  with a DeprecationWarning, silenced here) and needs no other package; the
  default ``dynamo=True`` exporter raises ``ModuleNotFoundError: No module
  named 'onnxscript'`` without the onnxscript package and took 0.7-1.3 s
  on a 784-256-30 MLP (see :mod:`skae._onnx`). The module is exported at
  the container's opset, at most 20 (the tracer's newest;
  ``onnx.version_converter`` lifts the model to a newer target), when the
  graph first needs it, and its nodes are copied into the skl2onnx
  container under fresh names. Tracing records one path through the
  module: a ``TracerWarning`` (data-dependent control flow, a tensor turned
  into a Python number) means the graph may differ from the module on
  other inputs, so it is an error, as is any export failure: a TypeError
  naming the estimator, the module and torch's reason. (torch itself still
  prints the module's TorchScript graph to standard output when its
  export fails.)

onnxruntime's CPU provider has no float64 ``Conv``/``ConvTranspose``
kernels (measured: ``NOT_IMPLEMENTED`` at opsets 13, 18 and 22), so in a
float64 graph the convolutions, and user modules (which may hold any
layer), compute in float32 between ``Cast`` nodes, with the float32 weights
the estimator fitted; the normalisation and the linear layers stay float64.
Such graphs agree with ``transform`` on float64 input to float32 precision.
"""

import copy
import io
import warnings
from functools import partial

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, version_converter
from torch import nn

from ._custom_modules import ModularAutoencoder
from ._onnx_graph import _activation_op, _mlp, _steps

# The TorchScript exporter's newest opset (torch.onnx._constants).
_TRACER_MAX_OPSET = 20
_CONV = {
    nn.Conv1d: "Conv",
    nn.Conv2d: "Conv",
    nn.ConvTranspose1d: "ConvTranspose",
    nn.ConvTranspose2d: "ConvTranspose",
}


def network(estimator):
    """What the graph of ``estimator.module_`` is built from."""
    if isinstance(estimator.module_, ModularAutoencoder):
        return _Modular(estimator)
    return _mlp(estimator)


class _Modular:
    """Steps of a :class:`ModularAutoencoder`: ``encode``, ``decode`` and, for
    the VAE, ``hidden``/``head``/``log_var`` (the ELBO's pieces).

    The normalisation is never folded (``fold``), as
    ``ModularAutoencoder.plain_functions`` does not fold it.
    """

    fold = False

    def __init__(self, estimator):
        module = estimator.module_
        name = type(estimator).__name__
        k = estimator.n_components_
        conv = estimator.encoder == "conv" or estimator.decoder == "conv"
        code_act = _activation_steps("module_.code_activation", module.code_activation)
        out_act = _activation_steps("module_.output_activation", module.output_activation)
        self.variational = hasattr(module, "noise_var")
        if conv:
            hidden, last = _conv_steps("module_.encoder", module.encoder)
            self.decode = _conv_steps("module_.decoder", module.decoder)[0] + out_act
        else:
            x = torch.zeros(2, len(estimator.mean_))
            hidden, last = [_traced(name, "encoder", module.encoder, x)], None
            self.decode = [_traced(name, "decoder", module.decoder, torch.zeros(2, k))] + out_act
        if not self.variational:
            self.encode = hidden + ([last] if last else []) + code_act
            return
        # The encoder's 2k outputs: the posterior mean, then the log-variance.
        self.noise_var = float(module.noise_var)
        if last:  # split the last linear layer's rows
            _, w, b = last
            self.head = [("gemm", w[:, :k], b[:k])] + code_act
            self.log_var = [("gemm", w[:, k:], b[k:])]
        else:
            self.head = [("emit", partial(_columns, 0, k))] + code_act
            self.log_var = [("emit", partial(_columns, k, 2 * k))]
        self.hidden = hidden
        self.encode = hidden + self.head


def _activation_steps(where, layer):
    """The ``act`` step of an activation module (none for identity); a
    TypeError naming ``where`` for a module that is not an activation."""
    op = _activation_op(layer)
    if op is None:
        return _steps([(where, layer)])  # raises the TypeError naming it
    return [("act", op)] if op else []


def _conv_steps(prefix, seq):
    """Steps of a :func:`~skae._custom_modules.conv_stack` half and its last
    ``gemm`` step apart (``None`` when it does not end in one)."""
    steps = []
    for i, layer in enumerate(seq):
        kind = type(layer)
        if kind in _CONV:
            steps.append(("emit", partial(_conv, _CONV[kind], layer)))
        elif kind is nn.Unflatten and layer.dim == 1:
            shape = np.array([-1, *layer.unflattened_size], dtype=np.int64)
            steps.append(("emit", partial(_reshape, shape)))
        elif kind is nn.Flatten and (layer.start_dim, layer.end_dim) == (1, -1):
            steps.append(("emit", _flatten))
        else:
            steps += _steps([(f"{prefix}[{i}]", layer)])
    if steps and steps[-1][0] == "gemm":
        return steps[:-1], steps[-1]
    return steps, None


def _conv(op_type, layer, g, x):
    """A (transposed) convolution of the conv stack (zero padding, numeric
    ``padding``), float32 inside (see the module docstring)."""
    attrs = dict(
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=list(layer.padding) * 2,
        dilations=list(layer.dilation),
        group=int(layer.groups),
    )
    if op_type == "ConvTranspose":
        attrs["output_padding"] = list(layer.output_padding)
    w = g.const("skae_conv_w", _numpy32(layer.weight), dtype=np.float32)
    b = g.const("skae_conv_b", _numpy32(layer.bias), dtype=np.float32)
    y = g.op(op_type, [_cast(g, x, TensorProto.FLOAT), w, b], **attrs)
    return _cast(g, y, g.proto_type)


def _numpy32(tensor):
    return tensor.detach().cpu().float().numpy()


def _reshape(shape, g, x):
    """``nn.Unflatten(1, ...)``: one Reshape to ``(-1, *unflattened_size)``."""
    return g.op("Reshape", [x, g.const("skae_shape", shape, dtype=np.int64)])


def _flatten(g, x):
    return g.op("Flatten", [x], axis=1)


def _columns(start, stop, g, x):
    """Columns ``start:stop`` (the VAE encoder's mean or log-variance)."""
    consts = [g.const("skae_slice", [v], dtype=np.int64) for v in (start, stop, 1)]
    return g.op("Slice", [x, *consts])


# ----------------------------------------------------------------------
# user modules: torch.onnx
# ----------------------------------------------------------------------
def _traced(estimator_name, part, module, x):
    """A step running ``module`` as exported by :func:`_export` when written."""
    module = copy.deepcopy(module).cpu().float().eval()
    # Exported when first written (converting ``transform`` does not need
    # the decoder to be exportable), once per opset.
    models = {}

    def emit(g, x_name):
        opset = min(g.container.target_opset, _TRACER_MAX_OPSET)
        if opset not in models:
            models[opset] = _export(estimator_name, part, module, x, opset)
        return inline(models[opset], g, x_name)

    return ("emit", emit)


def _export(estimator_name, part, module, x, opset):
    """``module`` (float32, eval mode) as an ONNX model with any batch size,
    traced on the example batch ``x``; a TypeError with torch's reason if
    torch cannot export it or warns that the trace may be wrong."""
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False
            warnings.simplefilter("always", torch.jit.TracerWarning)
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    (x,),
                    buffer,
                    dynamo=False,
                    input_names=["x"],
                    output_names=["y"],
                    dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                    opset_version=opset,
                )
        traced = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        if traced:  # the graph may hold one branch of the module only
            raise traced[0].category(str(traced[0].message))
    except Exception as exc:  # any failure of the user's module: a clear error
        lines = str(exc).strip().splitlines()
        raise TypeError(
            f"Cannot convert {estimator_name} to ONNX: torch.onnx.export (dynamo=False) "
            f"cannot export its {part} module "
            f"({type(module).__module__}.{type(module).__qualname__}): "
            f"{type(exc).__name__}: {lines[0] if lines else ''}"
        ) from None
    return onnx.load_from_string(buffer.getvalue())


def inline(model, g, x):
    """Copy ``model``'s nodes into ``g`` (float32 inside), ``x`` as its input.

    A model of an older opset than the container's target is converted to
    it first (``onnx.version_converter``).
    """
    target = g.container.target_opset
    opset = {o.domain: o.version for o in model.opset_import}.get("", target)
    if opset < target:
        model = version_converter.convert_version(model, target)
    graph = model.graph
    names = {graph.input[0].name: _cast(g, x, TensorProto.FLOAT)}
    for init in graph.initializer:
        names[init.name] = g.scope.get_unique_variable_name("skae_user_w")
        tensor = onnx.TensorProto()
        tensor.CopyFrom(init)
        tensor.name = names[init.name]
        g.container.add_initializer(tensor.name, tensor.data_type, list(tensor.dims), tensor)
    for node in graph.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise TypeError(f"Cannot inline the exported {node.op_type} node (a subgraph).")
        for out in node.output:
            names[out] = g.scope.get_unique_variable_name("skae_user") if out else ""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        g.container.add_node(
            node.op_type,
            [names[i] if i else "" for i in node.input],
            [names[o] for o in node.output],
            op_domain=node.domain,
            name=g.scope.get_unique_operator_name(f"SkaeUser{node.op_type}"),
            **attrs,
        )
    return _cast(g, names[graph.output[0].name], g.proto_type)


def _cast(g, x, to):
    """``x`` as ``to``; no node in a float32 graph."""
    return x if g.dtype == np.float32 else g.op("Cast", [x], to=to)
