"""ONNX export of conv-stack and user-module networks (issue #17, skae/_onnx_modules.py)."""

import io
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from _helpers import fast_estimator, fit_quietly, public_estimators
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import skae

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
to_onnx = skl2onnx.to_onnx

K = 4
make = partial(fast_estimator, n_components=K, max_iter=2, pretrain_max_iter=1)
CONV = dict(encoder="conv", conv_channels=(4, 8))
SHAPES = {"2d": (1, 8, 8), "1d": (4, 16)}  # digits rows as 8x8 images or 4 x 16 signals
# float32 graphs: the tolerance. float64 graphs compute convolutions
# and user modules in float32 (onnxruntime has no float64 Conv kernel), so
# they agree with the float64 transform to float32 precision too.
TOL = dict(rtol=1e-5, atol=1e-5)
# Every public estimator but SemanticHashing, whose transform returns bits
# and has no score_samples (test_semantic_hashing_codes).
NETWORKS = [cls for cls in public_estimators() if cls is not skae.SemanticHashing]


def run(onx, X):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def converted(est, X, method=None, **kw):
    options = {id(est): {"method": method}} if method else None
    return run(to_onnx(est, X[:1], options=options, **kw), X)[0]



@pytest.fixture(scope="module")
def X(digits):
    return digits[0][:100]


def assert_methods_match(est, X, dtype, score_rtol=1e-5):
    """transform, inverse_transform and score_samples: onnxruntime == skae."""
    Xd = X.astype(dtype)
    got, expected = converted(est, Xd), est.transform(Xd)
    assert got.dtype == expected.dtype == dtype and got.shape == (len(X), K)
    assert_allclose(got, expected, **TOL)
    codes = expected
    got = converted(est, codes, "inverse_transform")
    assert got.dtype == dtype and got.shape == X.shape
    assert_allclose(got, est.inverse_transform(codes), **TOL)
    got = converted(est, Xd, "score_samples")
    assert got.dtype == dtype and got.shape == (len(X),)
    assert_allclose(got, est.score_samples(Xd), rtol=score_rtol, atol=0)


# ----------------------------------------------------------------------
# the built-in conv stack
# ----------------------------------------------------------------------
@pytest.fixture(
    scope="module",
    params=[(cls, shape) for cls in NETWORKS for shape in SHAPES],
    ids=[f"{cls.__name__}-{shape}" for cls in NETWORKS for shape in SHAPES],
)
def conv_fitted(request, X):
    cls, shape = request.param
    return fit_quietly(make(cls, input_shape=SHAPES[shape], **CONV), X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_matches(conv_fitted, X, dtype):
    assert_methods_match(conv_fitted, X, dtype)


def test_conv_graph_is_built_not_traced(X):
    """The conv stack is written with ONNX's Conv/ConvTranspose, one Reshape
    for nn.Unflatten, and float32 Casts around each convolution in float64."""
    est = fit_quietly(make(skae.AutoencoderTransformer, input_shape=(1, 8, 8), **CONV), X)
    ops = [n.op_type for n in to_onnx(est, X[:1].astype(np.float32)).graph.node]
    convs = ["Conv", "Relu", "Conv", "Relu"]
    assert ops == ["Sub", "Div", "Reshape", *convs, "Flatten", "Gemm", "Identity"]
    options = {id(est): {"method": "inverse_transform"}}
    onx = to_onnx(est, np.zeros((1, K)), options=options)
    ops = [n.op_type for n in onx.graph.node]
    assert ops.count("ConvTranspose") == 2 and ops.count("Cast") == 4
    assert "Sub" not in ops and "Mul" in ops and "Add" in ops  # denormalised


@pytest.mark.parametrize("cls", [skae.AutoencoderTransformer, skae.VariationalAE])
def test_conv_log_loss_score(cls, X):
    """Bernoulli decoder: the score is the BCE from the logits (sigmoid stripped)."""
    X01 = X / 16
    est = fit_quietly(make(cls, input_shape=(1, 8, 8), loss="log_loss", **CONV), X01)
    for dtype in (np.float32, np.float64):
        assert_methods_match(est, X01, dtype)


@pytest.mark.parametrize("network", ["conv", "user"])
def test_pipeline_same_labels(digits, network):
    """StandardScaler -> skae -> LogisticRegression: one ONNX model, same labels."""
    X, y = digits
    X, y = X[:400].astype(np.float32), y[:400]
    if network == "conv":
        params = dict(input_shape=(1, 8, 8), **CONV)
    else:
        params = user_modules(K)
    ae = skae.AutoencoderTransformer(K, max_iter=5, random_state=0, device="cpu", **params)
    pipe = Pipeline(
        [("scale", StandardScaler()), ("ae", ae), ("clf", LogisticRegression(max_iter=300))]
    )
    fit_quietly(pipe, X, y)
    onx = to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
    labels, proba = run(onx, X)
    assert_array_equal(labels, pipe.predict(X))
    assert_allclose(proba, pipe.predict_proba(X), atol=1e-4)


# ----------------------------------------------------------------------
# user-supplied modules: torch.onnx
# ----------------------------------------------------------------------
class Gain(nn.Module):
    """A module of the user's own: a learnt per-feature gain, then tanh."""

    def __init__(self, n):
        super().__init__()
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x):
        return torch.tanh(x * self.gain)


def user_modules(code_width):
    encoder = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), Gain(16), nn.Linear(16, code_width))
    decoder = nn.Sequential(nn.Linear(K, 16), Gain(16), nn.Linear(16, 64))
    return dict(encoder=encoder, decoder=decoder)


@pytest.fixture(scope="module", params=NETWORKS, ids=lambda c: c.__name__)
def user_fitted(request, X):
    cls = request.param
    width = 2 * K if cls is skae.VariationalAE else K
    return fit_quietly(make(cls, pretrain_max_iter=0, **user_modules(width)), X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_module_matches(user_fitted, X, dtype):
    assert_methods_match(user_fitted, X, dtype)


@pytest.mark.parametrize("network", ["conv", "user"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_semantic_hashing_codes(X, network, dtype):
    """SemanticHashing on both networks: the same uint8 bits, and decoding."""
    params = dict(input_shape=(1, 8, 8), **CONV) if network == "conv" else user_modules(K)
    est = fit_quietly(make(skae.SemanticHashing, **params), X)
    Xd = X.astype(dtype)
    codes = converted(est, Xd)
    assert codes.dtype == np.uint8
    assert_array_equal(codes, est.transform(Xd))
    bits = codes.astype(dtype)
    assert_allclose(converted(est, bits, "inverse_transform"), est.inverse_transform(bits), **TOL)


def test_user_module_across_opsets(X):
    """The trace is exported at the container's opset (at most 20, then
    converted up): 13 and 17 below it, skl2onnx's default (22) above."""
    est = fit_quietly(make(skae.VariationalAE, **user_modules(2 * K)), X)
    X32 = X.astype(np.float32)
    for opset in (13, 17):
        onx = to_onnx(est, X32[:1], target_opset=opset)
        assert max(o.version for o in onx.opset_import if o.domain == "") <= opset
        assert_allclose(run(onx, X32)[0], est.transform(X32), **TOL)
        got = converted(est, X32, "score_samples", target_opset=opset)
        assert_allclose(got, est.score_samples(X32), rtol=1e-5)


def test_user_cnn_converts_in_both_dtypes(X):
    """A user encoder with its own convolutions: onnxruntime has no float64
    Conv, so the float64 graph runs the module in float32 between Casts."""
    encoder = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(48, K),
    )
    est = fit_quietly(make(skae.DenoisingAE, encoder=encoder, decoder=nn.Linear(K, 64)), X)
    for dtype in (np.float32, np.float64):
        assert_methods_match(est, X, dtype)
    ops = [n.op_type for n in to_onnx(est, X[:1]).graph.node]
    assert "MaxPool" in ops and ops.count("Cast") == 2


@pytest.mark.parametrize("opset", [12, 17])
def test_conv_across_opsets(X, opset):
    est = fit_quietly(make(skae.VariationalAE, input_shape=(4, 16), **CONV), X)
    X32 = X.astype(np.float32)
    assert_allclose(converted(est, X32, target_opset=opset), est.transform(X32), **TOL)
    got = converted(est, X32, "score_samples", target_opset=opset)
    assert_allclose(got, est.score_samples(X32), rtol=1e-5)


class FFTMagnitude(nn.Module):
    """Spectral features: torch's ONNX exporter has no symbolic for rfft."""

    def forward(self, x):
        return torch.fft.rfft(x).abs()


def test_unexportable_module_is_a_clear_error(X):
    encoder = nn.Sequential(FFTMagnitude(), nn.Linear(33, K))
    decoder = nn.Linear(K, 64)
    est = fit_quietly(make(skae.AutoencoderTransformer, encoder=encoder, decoder=decoder), X)
    # torch itself cannot export it ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(Exception, match="aten::fft_rfft"):
            torch.onnx.export(
                est.module_.encoder, (torch.zeros(2, 64),), io.BytesIO(), dynamo=False
            )
    # ... so to_onnx says which estimator and module, and torch's reason.
    with pytest.raises(TypeError) as info:
        to_onnx(est, X[:1].astype(np.float32))
    message = str(info.value)
    assert message.startswith("Cannot convert AutoencoderTransformer to ONNX")
    assert "encoder module (torch.nn.modules.container.Sequential)" in message
    assert "UnsupportedOperatorError" in message and "'aten::fft_rfft'" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1
    # The decoder alone is exportable: inverse_transform converts.
    codes = est.transform(X.astype(np.float32))
    got = converted(est, codes, "inverse_transform")
    assert_allclose(got, est.inverse_transform(codes), **TOL)


class SignFlip(nn.Module):
    """Data-dependent control flow: a trace records one branch only."""

    def forward(self, x):
        return x if x.sum() > 0 else -x


def test_traced_branch_is_an_error(X):
    est = make(
        skae.AutoencoderTransformer,
        encoder=nn.Sequential(nn.Linear(64, K), SignFlip()),
        decoder=nn.Linear(K, 64),
    )
    fit_quietly(est, X)
    with pytest.raises(TypeError, match=r"encoder module .*TracerWarning: .*Python boolean"):
        to_onnx(est, X[:1].astype(np.float32))
