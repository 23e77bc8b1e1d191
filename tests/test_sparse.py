"""scipy.sparse input: batches densified one at a time, same model as dense."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skae import (
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    StackedAE,
    VariationalAE,
)
from skae._sparse import SparseRows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_iter=4, device="cpu", random_state=0)


def _counts(n=300, n_features=40, seed=0):
    rng = np.random.RandomState(seed)
    return rng.poisson(rng.gamma(0.3, 1.0, size=(n, n_features))).astype(np.float64)


CASES = [
    (AutoencoderTransformer, {}),
    (AutoencoderTransformer, {"loss": "poisson"}),
    (AutoencoderTransformer, {"normalize": "feature", "early_stopping": True}),
    (DenoisingAE, {"noise": "masking"}),
    (ContractiveAE, {}),
    (VariationalAE, {}),
    (StackedAE, {"pretrain_max_iter": 2, "noise": "gaussian", "hidden_layer_sizes": (16, 8)}),
]


@pytest.mark.parametrize("cls, kw", CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_sparse_and_dense_fit_the_same_model(cls, kw):
    X = _counts()
    dense = cls(3, **{**FAST, **kw}).fit(X)
    sparse = cls(3, **{**FAST, **kw}).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(sparse.mean_, dense.mean_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.scale_, dense.scale_, rtol=1e-10)
    Z = dense.transform(X)
    np.testing.assert_allclose(sparse.transform(X), Z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dense.transform(sp.csc_matrix(X)), Z, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        dense.score_samples(sp.csr_matrix(X)), dense.score_samples(X), rtol=1e-6
    )
    assert dense.score(sp.csr_matrix(X)) == pytest.approx(dense.score(X), rel=1e-6)
    back = dense.inverse_transform(Z)
    assert isinstance(back, np.ndarray) and back.shape == X.shape


def test_partial_fit_on_sparse_chunks_matches_dense():
    X = _counts()
    a = AutoencoderTransformer(3, loss="poisson", shuffle=False, **FAST)
    b = AutoencoderTransformer(3, loss="poisson", shuffle=False, **FAST)
    for chunk in np.array_split(np.arange(len(X)), 3):
        a.partial_fit(X[chunk])
        b.partial_fit(sp.csr_matrix(X[chunk]))
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-4)


def test_sparse_rows_densify_only_the_requested_rows():
    X = sp.random(50, 7, density=0.3, format="csr", random_state=0)
    rows = SparseRows(X, "cpu")
    rows.set_normalization(np.full(7, 0.5), np.full(7, 2.0))
    batch = rows[torch.tensor([3, 1])]
    expected = (X[[3, 1]].toarray() - 0.5) / 2.0
    np.testing.assert_allclose(batch.numpy(), expected, rtol=1e-6)
    assert batch.shape == (2, 7)
    dense = (X.toarray() - 0.5) / 2.0
    np.testing.assert_allclose(rows.var().numpy(), dense.var(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rows.amin().numpy(), dense.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(rows.amax().numpy(), dense.max(axis=0), rtol=1e-6)


def test_sparse_poisson_refuses_non_counts():
    X = sp.csr_matrix(_counts() + 0.5 * (_counts() > 0))
    with pytest.raises(ValueError, match="non-integer"):
        AutoencoderTransformer(3, loss="poisson", **FAST).fit(X)


@pytest.mark.parametrize(
    "params",
    [dict(loss="poisson"), dict(encoder="conv", input_shape=(1, 4, 4), conv_channels=(2,))],
    ids=["poisson", "conv"],
)
def test_sparse_input_trains_data_parallel(world_of_one, params):
    X = _counts(60, 16)
    kw = dict(FAST, shuffle=False, **params)
    ddp = AutoencoderTransformer(3, distributed=True, **kw).fit(sp.csr_matrix(X))
    plain = AutoencoderTransformer(3, **kw).fit(X)
    np.testing.assert_allclose(ddp.loss_curve_, plain.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(ddp.transform(X), plain.transform(X), rtol=1e-4, atol=1e-5)
