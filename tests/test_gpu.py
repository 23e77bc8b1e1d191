"""The estimators on a CUDA GPU (skipped where there is none, as in CI).

Run on an H100 with ``python -m pytest tests/test_gpu.py``; the rest of the
suite also runs there, with ``device='auto'`` choosing the GPU.
"""

import os
import pickle
from functools import partial
import subprocess
import sys

import numpy as np
import pytest
import torch
from _helpers import fast_estimator, public_estimators
from numpy.testing import assert_allclose

import skae

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

ESTIMATORS = public_estimators()
ids = pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
make = partial(fast_estimator, hidden_layer_sizes=(32,))


@pytest.fixture(scope="module")
def X(digits):
    return digits[0][:400] / 16.0


@ids
def test_fits_and_infers_on_the_gpu(cls, X):
    est = make(cls, device="cuda").fit(X)
    assert est.device_.startswith("cuda")
    assert all(p.is_cuda for p in est.module_.parameters())
    Z32 = est.transform(X.astype(np.float32))
    Z64 = est.transform(X)
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    # The float64 copy of the weights runs on the GPU too, and agrees.
    assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-4)
    assert est.inverse_transform(Z64).shape == X.shape
    assert np.isfinite(est.score(X))


@pytest.mark.parametrize("cls", [skae.AutoencoderTransformer, skae.ContractiveAE])
def test_gpu_fit_computes_what_the_cpu_fit_computes(cls, X):
    # Deterministic objectives, unshuffled batches, the same initial weights
    # (drawn on the CPU): the two devices differ by float32 rounding only.
    cpu = make(cls, shuffle=False, device="cpu").fit(X)
    gpu = make(cls, shuffle=False, device="cuda").fit(X)
    assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=1e-3)
    Z = cpu.transform(X)
    assert_allclose(gpu.transform(X), Z, rtol=1e-3, atol=1e-4 * np.abs(Z).max())


_LOAD_WITHOUT_CUDA = """
import pickle, sys, warnings
import numpy as np
import torch
assert not torch.cuda.is_available()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with open(sys.argv[1], "rb") as f:
        est = pickle.load(f)
assert est.device_ == "cpu", est.device_
assert any("CUDA" in str(w.message) for w in caught), [str(w.message) for w in caught]
np.save(sys.argv[3], est.transform(np.load(sys.argv[2])))
"""


@ids
def test_gpu_pickle_loads_in_a_process_without_cuda(cls, X, tmp_path):
    est = make(cls, device="cuda").fit(X)
    (tmp_path / "est.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_CUDA]
        + [str(tmp_path / name) for name in ("est.pkl", "X.npy", "Z.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_allclose(np.load(tmp_path / "Z.npy"), est.transform(X), rtol=1e-5, atol=1e-5)


def test_partial_fit_streams_chunks_on_the_gpu(X):
    est = skae.AutoencoderTransformer(8, hidden_layer_sizes=(32,), random_state=0, device="cuda")
    for _ in range(20):
        for start in range(0, len(X), 100):
            est.partial_fit(X[start : start + 100])
    assert est.device_.startswith("cuda")
    assert est.loss_curve_[-1] < 0.7 * est.loss_curve_[0]  # 0.58 on the CPU


@pytest.mark.parametrize("tied, loss", [(False, "squared_error"), (True, "log_loss")])
def test_fast_step_fit_equals_autograd_fit_on_the_gpu(X, tied, loss):
    # The hand-written step (skae._fast_step) on CUDA: the same fit as
    # autograd's, which a per-batch listener forces (close, not bit for bit:
    # cuBLAS may pick other kernels for the two paths' products).
    from skorch.callbacks import Callback

    import skae._fast_step as fast_step

    class Listens(Callback):
        def on_batch_end(self, net, **kwargs):
            pass

    params = dict(hidden_layer_sizes=(32,), max_iter=4, batch_size=64, tied_weights=tied,
                  loss=loss, alpha=0.01, random_state=0, device="cuda")
    fast = skae.AutoencoderTransformer(2, **params).fit(X)
    slow = skae.AutoencoderTransformer(2, callbacks=[Listens()], **params).fit(X)
    assert fast_step.plan(fast._net) is not None and fast_step.plan(slow._net) is None
    assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-4)
    for p, q in zip(fast.module_.parameters(), slow.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-4)
