"""SemanticHashing's neighbourhood term (issue #16): codes that keep input-space neighbours."""

import copy
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from _helpers import fast_estimator
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import SemanticHashing
from skae._hashing_objective import balance_penalty, input_neighbors, neighborhood_loss
from skae._losses import ReconstructionLoss

make = partial(fast_estimator, SemanticHashing, hidden_layer_sizes=(64,), max_iter=30)


@pytest.fixture(scope="module")
def split(digits):
    """Digits in [0, 1]: 1,400 rows indexed, 397 queries (as in test_hashing.py)."""
    X, y = digits
    X = X / 16.0
    return X[:1400], X[1400:], y[:1400], y[1400:]


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make(16, **params).fit(X)


def _precision_at_k(C_q, C_db, y_q, y_db, k=10):
    """Mean precision of the k nearest by Hamming distance, ties by index."""
    D = (C_q[:, None, :] != C_db[None, :, :]).sum(axis=2)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return float((y_db[order] == y_q[:, None]).mean())


@pytest.fixture(scope="module")
def pair(split):
    """The plain model and the same model with the neighbourhood term."""
    X_db = split[0]
    return _fit(X_db), _fit(X_db, neighbor_weight=100.0)


# ----------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------
def test_neighbor_term_retrieves_better_than_plain_and_pcah(pair, split):
    """Precision of the 10 nearest (same label = relevant), 16 bits, digits.

    Measured: PCAH 0.656, plain 0.686, with the term 0.800.
    """
    X_db, X_q, y_db, y_q = split
    plain, neigh = pair
    p_plain = _precision_at_k(plain.transform(X_q), plain.transform(X_db), y_q, y_db)
    p_neigh = _precision_at_k(neigh.transform(X_q), neigh.transform(X_db), y_q, y_db)
    pca = PCA(16, random_state=0).fit(X_db)
    p_pcah = _precision_at_k(
        (pca.transform(X_q) > 0).astype(np.uint8),
        (pca.transform(X_db) > 0).astype(np.uint8),
        y_q, y_db,
    )
    assert p_neigh > p_plain + 0.08, (p_neigh, p_plain)
    assert p_neigh > p_pcah + 0.1, (p_neigh, p_pcah)
    # The fitted index ranks the same way.
    ind = neigh.kneighbors(X_q, n_neighbors=10, return_distance=False)
    assert np.isclose((y_db[ind] == y_q[:, None]).mean(), p_neigh)


def test_neighbor_codes_are_balanced_and_spread(pair, split):
    X_db = split[0]
    codes = pair[1].transform(X_db)
    means = codes.mean(axis=0)
    assert np.all((means > 0.3) & (means < 0.7)), means
    # Neighbours share codes, but the codes do not collapse onto a few addresses.
    assert len(np.unique(codes, axis=0)) > 100
    # Bits are not copies of one another (measured: mean |correlation| 0.27,
    # the plain model's 0.26; at most 0.79 for a pair).
    corr = np.abs(np.corrcoef(codes.T.astype(np.float64))[np.triu_indices(16, 1)])
    assert corr.mean() < 0.4 and np.mean(corr > 0.8) < 0.05, corr


def test_default_is_the_plain_model(pair, split):
    """neighbor_weight=0 ignores the other two parameters: the same fit, bit for bit."""
    X_db, X_q = split[0], split[1]
    plain = pair[0]
    assert plain.neighbor_weight == 0.0
    other = _fit(X_db, batch_neighbors=3, neighbor_temperature=0.5)
    np.testing.assert_array_equal(other.transform(X_q), plain.transform(X_q))
    np.testing.assert_array_equal(other.loss_curve_, plain.loss_curve_)


def test_loss_adds_the_weighted_terms(pair, split):
    """_loss = reconstruction + balance + neighbor_weight * neighbourhood term."""
    neigh = pair[1]
    module = neigh.module_
    x = module.normalize(torch.as_tensor(split[0][:64], dtype=torch.float32))
    module.eval()
    with torch.no_grad():
        output = module(x)
        losses = {}
        for weight in (0.0, 100.0):
            est = copy.copy(neigh)  # the fixture keeps its parameters
            est.neighbor_weight = weight
            losses[weight] = est._loss(_NetStub(est), x, x, None, output).item()
        term = neighborhood_loss(
            x, output[2], neigh.batch_neighbors, neigh.neighbor_temperature
        ).item()
    assert term > 0
    np.testing.assert_allclose(losses[100.0], losses[0.0] + 100.0 * term, rtol=1e-5)


class _NetStub:
    """What ReconstructionObjective._loss reads from the skorch net."""

    def __init__(self, est):
        self.module_ = est.module_
        self.criterion_ = ReconstructionLoss(est.loss, est._output_activation)

    def global_rows(self, n):
        return n


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(neighbor_weight=-1.0), "neighbor_weight"),
        (dict(batch_neighbors=0), "batch_neighbors"),
        (dict(batch_neighbors=2.5), "batch_neighbors"),
        (dict(neighbor_temperature=0.0), "neighbor_temperature"),
    ],
)
def test_bad_neighbor_parameters(split, params, match):
    with pytest.raises(ValueError, match=match):
        SemanticHashing(4, max_iter=1, **params).fit(split[0][:20])


# ----------------------------------------------------------------------
# the term itself
# ----------------------------------------------------------------------
def test_input_neighbors_is_the_symmetric_knn_graph():
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    P = input_neighbors(x, 1).numpy()
    # 1-NN: 0->1, 1->0, 2->1, 3->2; symmetrised: {0,1}, {1,2}, {2,3}.
    expected = np.array(
        [[0, 1, 0, 0], [0.5, 0, 0.5, 0], [0, 0.5, 0, 0.5], [0, 0, 1, 0]], dtype=np.float32
    )
    np.testing.assert_allclose(P, expected)
    # More neighbours than rows: every other row.
    np.testing.assert_allclose(input_neighbors(x[:3], 10).numpy().sum(axis=1), 1.0)


def test_neighborhood_loss_prefers_codes_that_keep_neighbours():
    """Two well separated clusters: codes that split them by cluster cost
    less than codes that split each cluster, and the KL is never negative."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 5, generator=g), torch.randn(20, 5, generator=g) + 20])
    cluster = torch.cat([torch.ones(20), -torch.ones(20)])
    good = 6.0 * cluster[:, None].repeat(1, 8)
    bad = 6.0 * torch.tensor([1.0, -1.0]).repeat(20)[:, None].repeat(1, 8)
    loss_good = neighborhood_loss(x, good, 5, 0.2).item()
    loss_bad = neighborhood_loss(x, bad, 5, 0.2).item()
    assert 0 <= loss_good < 0.5 * loss_bad, (loss_good, loss_bad)


def test_neighborhood_loss_is_gradient_safe():
    """No NaN or inf in value or gradient: duplicate rows (zero distances),
    saturated logits, a batch of one, a batch smaller than the neighbours."""
    x = torch.zeros(6, 4)  # every distance 0
    logits = torch.full((6, 8), 80.0, requires_grad=True)  # saturated, identical codes
    loss = neighborhood_loss(x, logits, 10, 0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    one = torch.randn(1, 8, requires_grad=True)
    loss = neighborhood_loss(torch.randn(1, 4), one, 10, 0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(one.grad, torch.zeros_like(one))
    small = torch.randn(3, 8, requires_grad=True)
    loss = neighborhood_loss(torch.randn(3, 4), small, 10, 0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(small.grad).all()
    assert small.grad.abs().sum() > 0
    assert balance_penalty(torch.randn(1, 8)).item() == 0.0
