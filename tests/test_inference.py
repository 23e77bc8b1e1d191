"""Inference: per-dtype modules and bounded-memory chunking (``skae._inference``)."""

import threading

import numpy as np
import torch
from numpy.testing import assert_allclose

import skae._inference
from skae import AutoencoderTransformer
from skae._inference import InferenceCache, run


def _fitted(X, **kw):
    params = dict(n_components=3, hidden_layer_sizes=(16,), max_iter=3, device="cpu")
    return AutoencoderTransformer(**{**params, "random_state": 0, **kw}).fit(X)


def test_float32_in_float32_out_and_float64_path(digits):
    X, _ = digits
    ae = _fitted(X)
    Z32 = ae.transform(X.astype(np.float32))
    Z64 = ae.transform(X)
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-4)
    assert ae.inverse_transform(Z32).dtype == np.float32
    assert ae.score_samples(X.astype(np.float32)).dtype == np.float32


def test_results_do_not_depend_on_chunking(digits, monkeypatch):
    X, _ = digits
    ae = _fitted(X)
    whole = ae.transform(X)
    monkeypatch.setattr(skae._inference, "CHUNK_ELEMENTS", 16 * 7)  # 7 rows a chunk
    assert_allclose(ae.transform(X), whole, rtol=1e-12, atol=1e-14)


def test_run_chunks_rows_and_keeps_them_in_order(digits):
    X, _ = digits
    ae = _fitted(X)
    entry = ae._inference_entry(np.float64)
    calls = []

    def identity(entry, x):
        calls.append(len(x))
        return x * 2

    out = run(entry, X, identity, row_elements=skae._inference.CHUNK_ELEMENTS // 500)
    assert calls == [500, 500, 500, 297]
    assert_allclose(out, 2 * X)
    assert run(entry, X[:3], identity, out_dtype=np.float32).dtype == np.float32


def test_cache_builds_one_float64_copy_with_exact_statistics(digits):
    X, _ = digits
    ae = _fitted(X)
    cache = InferenceCache()
    entries = []
    threads = [
        threading.Thread(
            target=lambda: entries.append(cache.get(ae.module_, np.float64, ae.mean_, ae.scale_))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(e is entries[0] for e in entries)  # one copy for concurrent first calls
    module = entries[0].module
    assert next(module.parameters()).dtype == torch.float64
    # The float64 copy holds the exact statistics, not the float32 buffers upcast.
    assert_allclose(module.input_mean.numpy(), ae.mean_, rtol=0, atol=0)
    assert cache.get(ae.module_, np.float32, ae.mean_, ae.scale_).module is ae.module_


def test_autograd_path_differentiates(digits):
    X, _ = digits
    ae = _fitted(X)
    entry = ae._inference_entry(np.float64)

    def grad_norm(entry, x):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(entry.module.encode(entry.module.normalize(x)).sum(), x)
        return g.norm(dim=1)

    norms = run(entry, X[:10], grad_norm, autograd=True)
    assert norms.shape == (10,) and np.all(norms > 0)
