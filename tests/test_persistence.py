"""Saving and loading without pickle's risks (issue #9).

``est.save(path)`` / ``skae.load(path)`` round trips, files from elsewhere
(GPU, other classes, other versions, edited, corrupted, truncated, hostile),
and the other ways to persist: pickle and joblib (which GridSearchCV needs)
and skops.io (which cannot hold torch tensors).
"""

import json
import os
import pickle
import warnings
from functools import partial

import joblib
import numpy as np
import pytest
import torch
from _helpers import fast_estimator, public_estimators, same_weights, weights
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError

import skae

ESTIMATORS = public_estimators()
make = partial(fast_estimator, n_components=3, max_iter=3)
ids = pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)



@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:200], y[:200]



def _outputs(est, X):
    """Everything a fitted estimator computes, in both float dtypes."""
    out = {}
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        Z = est.transform(Xd)
        out[f"transform {dtype.__name__}"] = Z
        out[f"inverse {dtype.__name__}"] = est.inverse_transform(Z)
        out[f"score_samples {dtype.__name__}"] = est.score_samples(Xd)
    for method in ("denoise", "jacobian"):
        if hasattr(est, method):
            out[method] = getattr(est, method)(X[:10])
    if hasattr(est, "sample"):
        out["sample"] = est.sample(5, random_state=0)
    return out


def _assert_same_outputs(a, b, X):
    out_a, out_b = _outputs(a, X), _outputs(b, X)
    assert out_a.keys() == out_b.keys()
    for key in out_a:
        assert out_a[key].dtype == out_b[key].dtype, key
        assert_array_equal(out_a[key], out_b[key], err_msg=key)
    assert a.score(X) == b.score(X)


def _rewrite(src, dst, edit):
    """Copy a saved model, letting ``edit(header, arrays)`` change it."""
    with np.load(src, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(bytes(arrays.pop("skae.json")).decode())
    edit(header, arrays)
    blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **{"skae.json": blob, **arrays})
    return dst


# ----------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------
@ids
def test_round_trip_gives_identical_outputs(cls, data, tmp_path):
    X, _ = data
    est = make(cls).fit(X)
    est.save(tmp_path / "model.skae")
    loaded = skae.load(tmp_path / "model.skae")
    assert type(loaded) is cls
    assert loaded.get_params() == est.get_params()
    assert same_weights(weights(loaded), weights(est))
    for attr in (
        "n_features_in_",
        "n_components_",
        "loss_curve_",
        "n_iter_",
        "t_",
        "best_loss_",
        "batch_size_",
        "device_",
    ):
        assert getattr(loaded, attr) == getattr(est, attr), attr
    assert_array_equal(loaded.mean_, est.mean_)
    assert_array_equal(loaded.scale_, est.scale_)
    _assert_same_outputs(est, loaded, X)


@ids
def test_training_continues_exactly_after_load(cls, data, tmp_path):
    """partial_fit after loading resumes the saved optimiser state and random
    state: the result is bit-identical to continuing without saving."""
    X, _ = data
    est = make(cls).fit(X)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    est.partial_fit(X)
    loaded.partial_fit(X)
    assert same_weights(weights(loaded), weights(est))
    assert loaded.loss_curve_ == est.loss_curve_ and loaded.n_iter_ == 4


def test_supervised_stacked_and_feature_names_round_trip(data, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    labels = np.array(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
        ],
        dtype=object,
    )[y]
    est = make(skae.StackedAE, fine_tune="classification").fit(df, labels)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.classes_.dtype == object
    assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning
        assert_array_equal(loaded.transform(df), est.transform(df))
    assert list(loaded.get_feature_names_out()) == list(est.get_feature_names_out())
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(df.rename(columns={"px0": "other"}))


@pytest.mark.parametrize("random_state", [None, "instance"])
def test_random_state_parameter_round_trips(random_state, data, tmp_path):
    X, _ = data
    rs = np.random.RandomState(3) if random_state == "instance" else None
    est = make(skae.AutoencoderTransformer, random_state=rs).fit(X)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    if rs is None:
        assert loaded.random_state is None
    else:
        assert isinstance(loaded.random_state, np.random.RandomState)
        assert loaded.random_state.randint(1 << 30) == rs.randint(1 << 30)
    assert_array_equal(loaded.transform(X), est.transform(X))


def test_load_leaves_the_global_torch_rng_alone(data, tmp_path):
    X, _ = data
    make(skae.AutoencoderTransformer).fit(X).save(tmp_path / "m.skae")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    skae.load(tmp_path / "m.skae")
    assert torch.equal(torch.rand(3), expected)


def test_save_is_atomic(data, tmp_path, monkeypatch):
    """A save that fails half-way leaves the previous file intact and no
    temporary file behind."""
    X, _ = data
    path = tmp_path / "m.skae"
    est = make(skae.AutoencoderTransformer).fit(X)
    est.save(path)
    good = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        make(skae.AutoencoderTransformer, random_state=1).fit(X).save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.skae"]


# ----------------------------------------------------------------------
# files from elsewhere
# ----------------------------------------------------------------------
@ids
def test_model_saved_on_gpu_loads_on_cpu(cls, data, tmp_path):
    X, _ = data
    if torch.cuda.is_available():
        est = make(cls, device="cuda").fit(X)
        est.save(tmp_path / "gpu.skae")
        loaded = skae.load(tmp_path / "gpu.skae", device="cpu")
        assert loaded.device_ == "cpu"
        np.testing.assert_allclose(
            loaded.transform(X), est.transform(X), rtol=1e-5, atol=1e-5
        )
        return
    # No GPU here: the same file as a CUDA fit writes (weights are always
    # stored as host arrays; only the recorded device differs).
    est = make(cls).fit(X)
    est.save(tmp_path / "cpu.skae")
    _rewrite(
        tmp_path / "cpu.skae",
        tmp_path / "gpu.skae",
        lambda h, a: h.update(device="cuda:0"),
    )
    with pytest.warns(UserWarning, match="fitted on 'cuda:0'.*loaded on 'cpu'"):
        loaded = skae.load(tmp_path / "gpu.skae")
    assert loaded.device_ == "cpu"
    _assert_same_outputs(est, loaded, X)
    with pytest.raises(ValueError, match="CUDA is not available"):
        skae.load(tmp_path / "cpu.skae", device="cuda")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    """One saved AutoencoderTransformer and one VariationalAE / DenoisingAE."""
    X, _ = data
    folder = tmp_path_factory.mktemp("saved")
    paths = {}
    for cls in (skae.AutoencoderTransformer, skae.VariationalAE, skae.DenoisingAE):
        paths[cls.__name__] = folder / f"{cls.__name__}.skae"
        make(cls).fit(X).save(paths[cls.__name__])
    return paths


def test_corrupted_weights_are_detected(saved, tmp_path):
    path = saved["AutoencoderTransformer"]
    raw = bytearray(path.read_bytes())
    loaded = skae.load(path)
    target = loaded.module_.state_dict()["encoder.0.weight"].numpy().tobytes()
    offset = raw.find(target)
    assert offset > 0  # stored uncompressed
    raw[offset + len(target) // 2] ^= 0x40
    (tmp_path / "bad.skae").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not a readable skae model file.*corrupted"):
        skae.load(tmp_path / "bad.skae")


def test_consistently_rewritten_arrays_fail_the_checksum(saved, tmp_path):
    # A zip with valid CRCs but an array that is not the one saved.
    def edit(header, arrays):
        name = header["module_state"][2][1]["__tensor__"]
        arrays[name] = arrays[name] + 1

    bad = _rewrite(saved["AutoencoderTransformer"], tmp_path / "bad.skae", edit)
    with pytest.raises(ValueError, match="checksum mismatch"):
        skae.load(bad)


@pytest.mark.parametrize("keep", [0, 1, 30, 0.5, -1])
def test_truncated_files_are_clear_errors(saved, tmp_path, keep):
    raw = saved["AutoencoderTransformer"].read_bytes()
    n = keep if isinstance(keep, int) and keep >= 0 else len(raw) + keep
    n = int(len(raw) * keep) if isinstance(keep, float) else n
    (tmp_path / "cut.skae").write_bytes(raw[:n])
    with pytest.raises(ValueError, match="not a readable skae model file"):
        skae.load(tmp_path / "cut.skae")


def test_files_that_are_not_models(tmp_path, data):
    (tmp_path / "text.skae").write_text("hello")
    with pytest.raises(ValueError, match="not a readable skae model file"):
        skae.load(tmp_path / "text.skae")
    with open(tmp_path / "plain.npz", "wb") as f:
        np.savez(f, x=np.ones(3))
    with pytest.raises(ValueError, match="not a skae model file"):
        skae.load(tmp_path / "plain.npz")
    with open(tmp_path / "array.npy", "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(ValueError, match="not a skae model file"):
        skae.load(tmp_path / "array.npy")
    with pytest.raises(FileNotFoundError):
        skae.load(tmp_path / "missing.skae")


class _Exploit:
    """Unpickling this would create a file (stands in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.skae", "wb") as f:
        pickle.dump(_Exploit(str(marker)), f)
    with pytest.raises(ValueError, match="not a readable skae model file"):
        skae.load(tmp_path / "evil.skae")
    assert not marker.exists()
    # Nor an object array inside an otherwise valid archive.
    with open(tmp_path / "evil.npz", "wb") as f:
        np.savez(f, **{"skae.json": np.array([_Exploit(str(marker))], dtype=object)})
    with pytest.raises(ValueError):
        skae.load(tmp_path / "evil.npz")
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["PCA", "os.system", "sklearn.decomposition.PCA", "_BaseAutoencoder", "load", None],
)
def test_only_skae_estimator_classes_are_built(saved, tmp_path, name):
    bad = _rewrite(
        saved["AutoencoderTransformer"],
        tmp_path / "bad.skae",
        lambda h, a: h.update({"class": name}),
    )
    with pytest.raises(ValueError, match="not one of skae's estimators"):
        skae.load(bad)


def test_file_relabelled_as_another_class(saved, tmp_path):
    # VariationalAE weights under AutoencoderTransformer's name (and without
    # its beta): the network rebuilt from the hyperparameters has no
    # log-variance head.
    def vae_as_ae(header, arrays):
        header.update({"class": "AutoencoderTransformer"})
        header["params"].pop("beta")

    bad = _rewrite(saved["VariationalAE"], tmp_path / "vae_as_ae.skae", vae_as_ae)
    with pytest.raises(ValueError, match="do not fit the network"):
        skae.load(bad)
    # DenoisingAE's parameters are unknown to AutoencoderTransformer.
    bad = _rewrite(
        saved["DenoisingAE"],
        tmp_path / "dae_as_ae.skae",
        lambda h, a: h.update({"class": "AutoencoderTransformer"}),
    )
    with pytest.raises(ValueError, match=r"parameters \['noise', 'noise_level'\]"):
        skae.load(bad)


def test_version_mismatch(saved, tmp_path):
    old = _rewrite(
        saved["AutoencoderTransformer"],
        tmp_path / "old.skae",
        lambda h, a: h.update(skae_version="0.0.1"),
    )
    with pytest.raises(
        ValueError, match=r"written by skae '0\.0\.1'.*allow_version_mismatch"
    ):
        skae.load(old)
    with pytest.warns(UserWarning, match="0.0.1"):
        loaded = skae.load(old, allow_version_mismatch=True)
    X = np.random.RandomState(0).rand(5, 64)
    assert_array_equal(
        loaded.transform(X), skae.load(saved["AutoencoderTransformer"]).transform(X)
    )
    future = _rewrite(
        saved["AutoencoderTransformer"],
        tmp_path / "future.skae",
        lambda h, a: h.update(format_version=2),
    )
    with pytest.raises(ValueError, match="file format version 2"):
        skae.load(future, allow_version_mismatch=True)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda h, a: h["params"].update(n_components=-3),
            "invalid parameters.*n_components",
        ),
        (
            lambda h, a: h["params"].update(device={"__tuple__": ["x"]}),
            "invalid parameters.*device",
        ),
        (lambda h, a: h["params"].update(bogus=1), r"parameters \['bogus'\]"),
        (
            lambda h, a: h["attributes"].update(transform=1),
            "forbidden attribute 'transform'",
        ),
        (
            lambda h, a: h["attributes"].update(__class__="x"),
            "not describe a valid.*tag",
        ),
        (lambda h, a: h["attributes"].update(_net=1), "forbidden attribute '_net'"),
        (lambda h, a: h["attributes"].update(mean_={"__pickle__": "x"}), "unknown tag"),
        (
            lambda h, a: h["attributes"].update(mean_={"__array__": "nope"}),
            "unknown array",
        ),
        (lambda h, a: h["attributes"].pop("n_features_in_"), "n_features_in_"),
        (lambda h, a: h["module_state"].pop(), "do not fit the network"),
        (lambda h, a: h.pop("checksums"), "not a readable"),
        (lambda h, a: h.update(format="something else"), "not a skae model file"),
    ],
    ids=[
        "bad-param",
        "bad-device",
        "unknown-param",
        "method-name",
        "dunder",
        "private-internal",
        "unknown-tag",
        "unknown-array",
        "no-n_features_in_",
        "missing-weight",
        "no-checksums",
        "wrong-format",
    ],
)
def test_edited_headers_are_rejected(saved, tmp_path, edit, match):
    bad = _rewrite(saved["AutoencoderTransformer"], tmp_path / "bad.skae", edit)
    with pytest.raises(ValueError, match=match):
        skae.load(bad)


def test_save_refuses_what_it_cannot_store(data, tmp_path):
    X, _ = data
    with pytest.raises(NotFittedError):
        make(skae.AutoencoderTransformer).save(tmp_path / "m.skae")
    from skorch.callbacks import EpochTimer

    est = make(skae.AutoencoderTransformer, callbacks=[EpochTimer()]).fit(X)
    with pytest.raises(
        ValueError, match=r"callbacks cannot be saved.*set_params\(callbacks=None\)"
    ):
        est.save(tmp_path / "m.skae")
    est.set_params(callbacks=None).save(tmp_path / "m.skae")
    assert_array_equal(skae.load(tmp_path / "m.skae").transform(X), est.transform(X))

    class Custom(skae.AutoencoderTransformer):
        pass

    custom = fast_estimator(Custom, n_components=3, max_iter=3).fit(X)
    with pytest.raises(TypeError, match="not one of skae's public estimators"):
        custom.save(tmp_path / "c.skae")


# ----------------------------------------------------------------------
# pickle, joblib, skops
# ----------------------------------------------------------------------
@ids
def test_pickle_and_joblib_keep_working(cls, data, tmp_path):
    X, _ = data
    est = make(cls).fit(X)
    _assert_same_outputs(est, pickle.loads(pickle.dumps(est)), X)
    joblib.dump(est, tmp_path / "m.joblib")
    _assert_same_outputs(est, joblib.load(tmp_path / "m.joblib"), X)
    # A loaded model pickles too (GridSearchCV sends it to workers).
    est.save(tmp_path / "m.skae")
    _assert_same_outputs(
        est, pickle.loads(pickle.dumps(skae.load(tmp_path / "m.skae"))), X
    )


def test_skops_cannot_persist_torch_state(data):
    """skops.io has no handler for torch tensors (skops 0.16): dumping a
    fitted skae estimator fails, so use ``est.save`` / ``skae.load``.
    If this starts passing, skops learned tensors: update the docs."""
    sio = pytest.importorskip("skops.io")
    X, _ = data
    est = make(skae.AutoencoderTransformer).fit(X)
    # The fitted net holds tensors (and class objects skops recurses on).
    with pytest.raises((RuntimeError, RecursionError)):
        sio.dumps(est)
    with pytest.raises(RuntimeError, match="TensorBase"):
        sio.dumps(torch.zeros(2))
    # An unfitted estimator is plain parameters: skops handles it and
    # trusts it without extra types.
    blob = sio.dumps(make(skae.AutoencoderTransformer))
    assert sio.get_untrusted_types(data=blob) == [
        "skae._autoencoder.AutoencoderTransformer"
    ]
