"""ONNX export of the skae estimators through skl2onnx.

After ``import skae``, ``skl2onnx.to_onnx(estimator, X_sample)`` converts a
fitted skae estimator (alone or as a step of a scikit-learn Pipeline). The
converters here are registered with skl2onnx's documented API,
:func:`skl2onnx.update_registered_converter`, one alias per public class.

Registration is lazy: importing skl2onnx (and onnx) costs more than a second,
a quarter of ``import skae`` itself, so ``import skae`` does not import it.
If skl2onnx is already imported, the converters are registered at once;
otherwise a finder on ``sys.meta_path`` waits for the first ``import
skl2onnx`` and registers them right after skl2onnx's own ``__init__`` has
run. Either way they are in place before the user can call ``to_onnx``.

The graph of the fully connected network is built from the fitted layers
with ONNX operators (``Gemm``, the activations, and the normalisation as
``Sub``/``Div`` or folded into the first layer), not exported by
``torch.onnx``. Measured on a 784-256-30 network on one thread (torch 2.13,
onnxruntime 1.32): building the graph takes about 7 ms (40 ms on the first
call in a process) and needs nothing beyond skl2onnx; ``torch.onnx.export``
with torch's default exporter (``dynamo=True``) took 0.7-1.3 s and needs
the onnxscript package, the TorchScript exporter (``dynamo=False``, no
longer the default) 6-8 ms (80 ms first). onnxruntime ran the three graphs
equally fast (20-28 us a row, 9-15 ms for 2,000 rows, within this shared
machine's noise) once the weights were stored in torch's ``(out, in)``
layout with ``transB=1``. The builder also takes the float64 statistics
straight from ``mean_`` and ``scale_`` and writes the VAE's ELBO with its
fixed draws as constants. A layer the builder does not know raises a
TypeError naming it.

Networks given by the ``encoder``/``decoder`` parameters are described by
:mod:`skae._onnx_modules`: the built-in conv stack (``encoder='conv'``) is
written by the same builder (``Conv``, ``ConvTranspose``, ``Reshape``),
user-supplied torch modules are exported with ``torch.onnx.export``
(``dynamo=False``) and inlined; a module torch cannot export raises a
TypeError with torch's reason. See that module for the measurements behind
the two routes and for float64 graphs, in which convolutions and user
modules compute in float32 (onnxruntime has no float64 ``Conv``).

The opset is skl2onnx's ``target_opset`` (its latest tested one, 22, by
default); only ``ReduceSum`` changes form (axes as an input from opset 13).
Tested at opsets 12, 13, 17 and 22.

Three methods can be converted, chosen per estimator with the skl2onnx
option ``method`` (``options={id(est): {"method": ...}}``):

* ``'transform'`` (default): ``(n, n_features) -> (n, n_components)``;
* ``'inverse_transform'``: ``(n, n_components) -> (n, n_features)``, the
  decoder, so the sample passed to ``to_onnx`` is a code;
* ``'score_samples'``: ``(n, n_features) -> (n,)``, minus the reconstruction
  error; for VariationalAE the ELBO with the same fixed Monte Carlo draws
  as ``VariationalAE.score_samples``.

float32 graphs use the float32 weights the estimator computes with; float64
graphs use float64 copies of the weights and the float64 normalisation
statistics ``mean_`` and ``scale_``, as ``transform`` does on float64 input
(except for convolutions and user modules, as said above).
"""

import sys
import threading
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._autoencoder import AutoencoderTransformer
from ._contractive import ContractiveAE
from ._denoising import DenoisingAE
from ._hashing import SemanticHashing
from ._stacked import StackedAE
from ._variational import VariationalAE

_METHODS = ("transform", "inverse_transform", "score_samples")
_ESTIMATORS = (
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    SemanticHashing,
    StackedAE,
    VariationalAE,
)

_registered = False
_lock = threading.Lock()

def _method(operator):
    est = operator.raw_operator
    return operator.scope_inst.get_options(est, dict(method="transform"))["method"]


def _input_dtype(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = operator.inputs[0].type
    if isinstance(kind, DoubleTensorType):
        return np.float64
    if isinstance(kind, FloatTensorType):
        return np.float32
    raise TypeError(
        f"{type(operator.raw_operator).__name__} converts float32 or float64 input to "
        f"ONNX, got {type(kind).__name__}; cast X to float32 or float64 first."
    )


def _binary_codes(est):
    """Whether ``transform`` returns binary uint8 codes (SemanticHashing)."""
    return not est.__sklearn_tags__().transformer_tags.preserves_dtype


def _shape_calculator(operator):
    """Output type of the converted method: input dtype, width by method."""
    est = operator.raw_operator
    check_is_fitted(est)
    _input_dtype(operator)  # raises for non-float input
    method = _method(operator)
    if method not in _METHODS:
        raise ValueError(
            f"method={method!r} is not a convertible method of {type(est).__name__}; "
            f"choose one of {_METHODS}."
        )
    if _binary_codes(est) and method == "score_samples":
        raise ValueError(
            f"{type(est).__name__}.score_samples is not convertible to ONNX yet; "
            "convert 'transform' or 'inverse_transform'."
        )
    if getattr(est, "_loss_name", est.loss) == "poisson" and method == "score_samples":
        raise ValueError(
            f"{type(est).__name__}(loss='poisson').score_samples is not convertible to "
            "ONNX: its log-likelihood needs log(x!), and ONNX has no log-gamma operator; "
            "convert 'transform' or 'inverse_transform'."
        )
    n_in = est.n_components_ if method == "inverse_transform" else est.n_features_in_
    width = operator.inputs[0].get_second_dimension()
    if width is not None and width != n_in:
        raise ValueError(
            f"{type(est).__name__}.{method} expects {n_in} columns in its ONNX input, got {width}."
        )
    n = operator.inputs[0].get_first_dimension()
    out_type = operator.inputs[0].type.__class__
    if method == "transform" and _binary_codes(est):
        from skl2onnx.common.data_types import UInt8TensorType

        operator.outputs[0].type = UInt8TensorType([n, est.n_components_])
    elif method == "transform":
        operator.outputs[0].type = out_type([n, est.n_components_])
    elif method == "inverse_transform":
        operator.outputs[0].type = out_type([n, est.n_features_in_])
    else:
        operator.outputs[0].type = out_type([n])


def _converter(scope, operator, container):
    # onnx loads with skl2onnx, only when a model is converted.
    from ._onnx_graph import _denormalise, _encode, _Graph, _score_samples
    from ._onnx_modules import network

    est = operator.raw_operator
    dtype = _input_dtype(operator)
    method = _method(operator)
    net = network(est)
    g = _Graph(scope, container, dtype)
    x = operator.inputs[0].full_name
    out = operator.outputs[0].full_name
    if method == "transform" and _binary_codes(est):
        # SemanticHashing: bit k is 1 where the code's probability exceeds 0.5.
        from onnx import TensorProto

        above = g.op("Greater", [_encode(g, x, est, net), g.const("skae_half", 0.5)])
        g.op("Cast", [above], output=out, to=TensorProto.UINT8)
    elif method == "transform":
        g.op("Identity", [_encode(g, x, est, net)], output=out)
    elif method == "inverse_transform":
        _denormalise(g, g.steps(x, net.decode), est, output=out)
    else:
        _score_samples(g, x, est, net, out)


# ----------------------------------------------------------------------
# registration
# ----------------------------------------------------------------------
def register_converters():
    """Register the converters of every skae estimator with skl2onnx.

    Called automatically (see the module docstring); safe to call again.
    """
    global _registered
    with _lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter

        for cls in _ESTIMATORS:
            update_registered_converter(
                cls,
                f"Skae{cls.__name__}",
                _shape_calculator,
                _converter,
                options={"method": list(_METHODS)},
            )
        _registered = True


class _RegisterAfterImport:
    """Runs :func:`register_converters` once ``skl2onnx`` has been imported.

    It finds nothing itself: for ``skl2onnx`` it asks the finders after it
    for the real spec and wraps the loader's ``exec_module``, then restores
    the original loader and removes itself. (A finder and a loader need only
    these methods: ``importlib.abc`` is not imported, it costs ~30 ms.)
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        finders = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else []
        for finder in finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader:
    def __init__(self, loader, finder):
        self._loader, self._finder = loader, finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        try:
            register_converters()
        except Exception as exc:  # skl2onnx itself must still import
            warnings.warn(
                f"skae could not register its ONNX converters with skl2onnx: {exc!r}",
                RuntimeWarning,
                stacklevel=2,
            )

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _install():
    """Register now if skl2onnx is imported, else when it is."""
    if sys.modules.get("skl2onnx") is not None:  # None: import blocked
        try:
            register_converters()
        except Exception as exc:  # import skae must not fail because of skl2onnx
            warnings.warn(
                f"skae could not register its ONNX converters with skl2onnx: {exc!r}",
                RuntimeWarning,
                stacklevel=3,
            )
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
