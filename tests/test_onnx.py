"""ONNX export through skl2onnx (issue #17): onnxruntime must agree with skae."""

import copy
import os
import subprocess
import sys
import textwrap
import warnings

from functools import partial

import numpy as np
import pytest
from _helpers import fast_estimator, public_estimators
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import skae

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
to_onnx = skl2onnx.to_onnx

make = partial(fast_estimator, hidden_layer_sizes=(16, 8), max_iter=3, n_components=4)
# float32 graphs: the tolerance of the issue; float64 graphs: both sides
# compute in float64 from the same statistics, so only summation order differs.
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}



@pytest.fixture(scope="module")
def X(digits):
    return digits[0][:200]


def run(onx, X):
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {sess.get_inputs()[0].name: X})
    return outputs


def converted(est, X, method=None, **kw):
    """onnxruntime's output of ``est``'s ``method`` on X, converted from X[:1]."""
    options = {id(est): {"method": method}} if method else None
    (out,) = run(to_onnx(est, X[:1], options=options, **kw), X)
    return out


CASES = (
    [(cls, {}) for cls in public_estimators()]
    + [
        (skae.AutoencoderTransformer, dict(tied_weights=True)),
        (skae.AutoencoderTransformer, dict(code_activation="tanh", output_activation="logistic")),
        (skae.AutoencoderTransformer, dict(normalize="feature", code_activation="relu")),
        (skae.AutoencoderTransformer, dict(hidden_layer_sizes=(), normalize=None)),
        (skae.VariationalAE, dict(tied_weights=True, activation="tanh")),
    ]
    + [
        (skae.StackedAE, dict(tied_weights=tied, activation=act))
        for tied in (False, True)
        for act in ("relu", "tanh", "logistic", "identity")
    ]
)


def case_id(case):
    cls, kw = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.fixture(scope="module", params=CASES, ids=[case_id(c) for c in CASES])
def fitted(request, digits):
    cls, kw = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make(cls, **kw).fit(digits[0][:200])


def _binary(est):
    """SemanticHashing's codes are uint8 bits, not X's float dtype."""
    return not est.__sklearn_tags__().transformer_tags.preserves_dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_matches(fitted, X, dtype):
    Xd = X.astype(dtype)
    got = converted(fitted, Xd)
    expected = fitted.transform(Xd)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.dtype == (np.uint8 if _binary(fitted) else dtype)
    assert_allclose(got, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inverse_transform_matches(fitted, X, dtype):
    codes = fitted.transform(X.astype(dtype)).astype(dtype)  # bits as floats
    got = converted(fitted, codes, "inverse_transform")
    expected = fitted.inverse_transform(codes)
    assert got.dtype == dtype and got.shape == (len(X), X.shape[1])
    assert_allclose(got, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["squared_error", "log_loss"])
@pytest.mark.parametrize("cls", [skae.AutoencoderTransformer, skae.VariationalAE])
def test_score_samples_matches(X, dtype, loss, cls):
    Xd = (X / 16 if loss == "log_loss" else X).astype(dtype)
    est = make(cls, loss=loss, tied_weights=cls is skae.VariationalAE).fit(Xd)
    got = converted(est, Xd, "score_samples")
    expected = est.score_samples(Xd)
    assert got.dtype == dtype and got.shape == (len(X),)
    # Sums of n_features squared errors: relative agreement.
    assert_allclose(got, expected, rtol=TOL[dtype]["rtol"], atol=0)


@pytest.mark.parametrize("opset", [12, 13, 17])
@pytest.mark.parametrize("cls", [skae.StackedAE, skae.VariationalAE])
def test_score_samples_across_opsets(X, opset, cls):
    # ReduceSum takes its axes as an attribute before opset 13, an input after.
    est = make(cls).fit(X)
    got = converted(est, X, "score_samples", target_opset=opset)
    assert_allclose(got, est.score_samples(X), rtol=1e-10)
    assert_allclose(converted(est, X, target_opset=opset), est.transform(X), rtol=1e-10)


def test_float64_uses_exact_statistics(X):
    """A far-off mean rounds visibly in float32: the float64 graph must use mean_."""
    Xo = X + 1e4 + 1 / 3
    est = make(skae.AutoencoderTransformer, normalize="feature").fit(Xo)
    assert np.any(est.mean_.astype(np.float32) != est.mean_)
    assert_allclose(converted(est, Xo), est.transform(Xo), rtol=1e-10, atol=1e-12)
    assert_allclose(converted(est, Xo, "score_samples"), est.score_samples(Xo), rtol=1e-10, atol=0)


def test_pipeline_same_labels(digits):
    X, y = digits
    X = X.astype(np.float32)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "ae",
                skae.AutoencoderTransformer(
                    8, hidden_layer_sizes=(32,), max_iter=20, random_state=0, device="cpu"
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)
    onx = to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
    labels, proba = run(onx, X)
    assert_array_equal(labels, pipe.predict(X))
    assert_allclose(proba, pipe.predict_proba(X), atol=1e-4)
    # A skae step between scikit-learn transformers, its decoder converted.
    codes = pipe[:2].transform(X)
    assert_allclose(
        converted(pipe[1], codes, "inverse_transform"),
        pipe[1].inverse_transform(codes),
        rtol=1e-5,
        atol=1e-5,
    )


def test_pipeline_float64(digits):
    from sklearn.decomposition import PCA

    X, _ = digits
    pipe = Pipeline([("ae", make(skae.DenoisingAE)), ("pca", PCA(2))]).fit(X)
    assert_allclose(run(to_onnx(pipe, X[:1]), X)[0], pipe.transform(X), rtol=1e-9, atol=1e-9)


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        to_onnx(skae.AutoencoderTransformer(), np.zeros((1, 4), dtype=np.float32))


def test_integer_input_raises(X):
    est = make(skae.AutoencoderTransformer).fit(X)
    with pytest.raises(TypeError, match="float32 or float64"):
        to_onnx(est, X[:1].astype(np.int64))


def test_wrong_width_raises(X):
    est = make(skae.AutoencoderTransformer).fit(X)
    with pytest.raises(ValueError, match="expects 64 columns.*got 4"):
        to_onnx(est, X[:1, :4].astype(np.float32))
    with pytest.raises(ValueError, match="inverse_transform expects 4 columns.*got 64"):
        to_onnx(est, X[:1].astype(np.float32), options={id(est): {"method": "inverse_transform"}})


def test_unknown_method_raises(X):
    est = make(skae.AutoencoderTransformer).fit(X)
    with pytest.raises((ValueError, NameError), match="predict"):
        to_onnx(est, X[:1].astype(np.float32), options={id(est): {"method": "predict"}})


def test_unknown_layer_raises(X):
    est = make(skae.AutoencoderTransformer).fit(X)
    est = copy.deepcopy(est)
    est.module_.encoder[1] = nn.GELU()
    with pytest.raises(TypeError, match=r"module_\.encoder\[1\].*GELU"):
        to_onnx(est, X[:1].astype(np.float32))
    est.module_.encoder[1] = nn.ReLU()
    est.module_.output_activation = nn.Softplus()
    codes = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"module_\.output_activation.*Softplus"):
        to_onnx(est, codes, options={id(est): {"method": "inverse_transform"}})


def test_unknown_module_raises(X):
    est = make(skae.AutoencoderTransformer).fit(X)
    est = copy.deepcopy(est)
    est.module_ = nn.Sequential(nn.Linear(64, 4))
    with pytest.raises(TypeError, match="not a skae MLP autoencoder"):
        to_onnx(est, X[:1].astype(np.float32))


SCRIPT = """
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
{first}
assert ("skl2onnx" in sys.modules) == {loaded}, "import skae must not import skl2onnx"
{second}
from skl2onnx import to_onnx
import onnxruntime as ort
X = np.random.RandomState(0).rand(20, 5)
est = skae.AutoencoderTransformer(2, hidden_layer_sizes=(3,), max_iter=1, device="cpu").fit(X)
sess = ort.InferenceSession(to_onnx(est, X[:1]).SerializeToString(),
                            providers=["CPUExecutionProvider"])
np.testing.assert_allclose(sess.run(None, {{"X": X}})[0], est.transform(X), rtol=1e-10)
print("ok")
"""


@pytest.mark.slow  # a fresh interpreter imports torch (several seconds)
@pytest.mark.parametrize("skae_first", [True, False], ids=["skae-first", "skl2onnx-first"])
def test_registered_whichever_is_imported_first(skae_first):
    """to_onnx works after import skae, which does not import skl2onnx itself."""
    first, second = "import skae", "import skl2onnx"
    if not skae_first:
        first, second = second, first
    code = SCRIPT.format(first=first, second=second, loaded=not skae_first)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("fine_tune", ["classification", "nca"])
def test_stacked_supervised_converts_encoder(digits, fine_tune):
    """The classification head is not part of transform, nor of the graph."""
    X, y = digits[0][:200], digits[1][:200]
    est = make(skae.StackedAE, fine_tune=fine_tune).fit(X, y)
    assert_allclose(converted(est, X), est.transform(X), rtol=1e-10, atol=1e-12)
    X32 = X.astype(np.float32)
    assert_allclose(converted(est, X32), est.transform(X32), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # a fresh interpreter imports torch (several seconds)
def test_import_skae_without_skl2onnx():
    """With skl2onnx unimportable, import skae neither fails nor warns."""
    code = """
import sys, warnings
sys.modules["skl2onnx"] = None  # what an absent package looks like to import
warnings.simplefilter("error")
import skae
try:
    import skl2onnx
except ImportError:
    print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_hashing_score_samples_is_a_clear_error(X):
    est = make(skae.SemanticHashing).fit(X)
    with pytest.raises(ValueError, match="score_samples is not convertible"):
        converted(est, X, "score_samples")


@pytest.mark.parametrize("cls", [skae.AutoencoderTransformer, skae.VariationalAE])
def test_poisson_converts(X, cls):
    """loss='poisson': codes and rates (Exp output) convert; the score does not."""
    counts = np.round(X / 4).astype(np.float32)  # digits' 0..16 pixels as counts 0..4
    est = make(cls, loss="poisson").fit(counts)
    assert_allclose(converted(est, counts), est.transform(counts), **TOL[np.float32])
    codes = est.transform(counts)
    rates = converted(est, codes, method="inverse_transform")
    assert_allclose(rates, est.inverse_transform(codes), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="log-gamma"):
        converted(est, counts, method="score_samples")
