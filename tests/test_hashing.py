"""SemanticHashing (issue #16): binary codes, retrieval, persistence, bad input."""

import pickle
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from _helpers import fast_estimator, fit_quietly
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neighbors import NearestNeighbors

import skae
from skae import SemanticHashing
from skae._hashing import HashingAutoencoder

make = partial(fast_estimator, SemanticHashing, hidden_layer_sizes=(64,), max_iter=30)



@pytest.fixture(scope="module")
def split():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:1400], X[1400:], y[:1400], y[1400:]


@pytest.fixture(scope="module")
def fitted(split):
    X_db, _, _, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make(16).fit(X_db)


def _brute(q, db):
    return (q[:, None, :] != db[None, :, :]).sum(axis=2)


def _precision_at_k(C_q, C_db, y_q, y_db, k):
    """Mean precision of the k nearest by Hamming distance, ties by index."""
    D = _brute(C_q, C_db)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return float((y_db[order] == y_q[:, None]).mean())


# ----------------------------------------------------------------------
# codes
# ----------------------------------------------------------------------
def test_codes_are_binary_uint8_and_balanced(fitted, split):
    X_db, X_q, _, _ = split
    codes = fitted.transform(X_db)
    assert codes.dtype == np.uint8 and codes.shape == (len(X_db), 16)
    assert set(np.unique(codes)) <= {0, 1}
    means = codes.mean(axis=0)
    assert np.all((means > 0.05) & (means < 0.95)), means  # every bit used
    # Distinct images get many distinct addresses.
    assert len(np.unique(codes, axis=0)) > 200
    # float32 input gives the same codes (up to bits at exactly 0.5).
    assert (fitted.transform(X_q.astype(np.float32)) != fitted.transform(X_q)).mean() < 1e-3


def test_codes_are_the_thresholded_code_probabilities(fitted, split):
    X_db, _, _, _ = split
    module = fitted.module_
    with torch.no_grad():
        x = module.normalize(torch.as_tensor(X_db[:50], dtype=torch.float32))
        prob = module.encode(x).numpy()
        decoded, code, logits = module(x)  # eval mode: the bits themselves
    np.testing.assert_array_equal(fitted.transform(X_db[:50].astype(np.float32)), prob > 0.5)
    np.testing.assert_array_equal(code.numpy(), prob > 0.5)
    np.testing.assert_array_equal(code.numpy(), logits.numpy() > 0)


def test_inverse_transform_decodes_codes(fitted, split):
    _, X_q, _, _ = split
    codes = fitted.transform(X_q)
    recon = fitted.inverse_transform(codes)
    assert recon.shape == X_q.shape and recon.dtype == np.float64
    err = ((recon - X_q) ** 2).sum(axis=1).mean()
    baseline = ((X_q - X_q.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert err < 0.8 * baseline  # 16 bits say a good deal about a digit
    # score_samples is minus the error of the reconstruction from the bits.
    np.testing.assert_allclose(-fitted.score_samples(X_q), ((recon - X_q) ** 2).sum(axis=1))


def test_training_noise_pushes_code_to_binary(fitted, split):
    """Against the same network trained without noise (noise_std=0), the
    noise saturates the code layer (more probabilities far from 0.5) and
    thresholding them costs less reconstruction."""
    X_db = split[0]
    saturated, gap = {}, {}
    assert fitted.noise_std == 4.0 and fitted.binarization == "noise"
    for noise_std in (0.0, 4.0):
        est = fitted if noise_std else make(16, noise_std=0.0).fit(X_db)
        with torch.no_grad():
            x = est.module_.normalize(torch.as_tensor(X_db, dtype=torch.float32))
            prob = est.module_.encode(x).numpy().astype(np.float64)
        saturated[noise_std] = np.mean(np.abs(prob - 0.5) > 0.4)
        relaxed = ((est.inverse_transform(prob) - X_db) ** 2).sum(axis=1).mean()
        binary = ((est.inverse_transform(est.transform(X_db)) - X_db) ** 2).sum(axis=1).mean()
        gap[noise_std] = binary - relaxed
    assert saturated[4.0] > saturated[0.0] + 0.15, saturated
    assert gap[4.0] < 0.5 * gap[0.0], gap


def test_module_noise_comes_from_torch_global_generator():
    module = HashingAutoencoder(6, 3, binarization="noise", noise_std=4.0, hidden_layer_sizes=(5,))
    x = torch.randn(4, 6)
    module.train()
    torch.manual_seed(1)
    a = module(x)[1]
    torch.manual_seed(1)
    b = module(x)[1]
    c = module(x)[1]
    assert torch.equal(a, b) and not torch.equal(b, c)
    module.eval()
    code = module(x)[1]
    assert set(code.unique().tolist()) <= {0.0, 1.0}
    # Straight-through: bits forward, the sigmoid's gradient backward.
    st = HashingAutoencoder(6, 3, binarization="straight_through", hidden_layer_sizes=(5,))
    st.train()
    out, code, _ = st(x)
    assert set(code.detach().unique().tolist()) <= {0.0, 1.0}
    out.sum().backward()
    assert st.code.weight.grad is not None and st.code.weight.grad.abs().sum() > 0


def test_fit_is_reproducible_and_leaves_global_rng_alone(split):
    X_db = split[0][:300]
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    params = dict(max_iter=3, hidden_layer_sizes=(8,), random_state=0, device="cpu")
    a = SemanticHashing(8, **params).fit(X_db)
    after = torch.rand(3)
    b = SemanticHashing(8, **params).fit(X_db)
    assert torch.equal(before, after)
    np.testing.assert_array_equal(a.packed_codes_, b.packed_codes_)


# ----------------------------------------------------------------------
# retrieval
# ----------------------------------------------------------------------
def test_index_holds_packed_codes_not_data(fitted, split):
    X_db = split[0]
    assert fitted.packed_codes_.dtype == np.uint8
    assert fitted.packed_codes_.shape == (len(X_db), 2)
    assert fitted.n_samples_fit_ == len(X_db)
    np.testing.assert_array_equal(
        np.unpackbits(fitted.packed_codes_, axis=1, count=16), fitted.transform(X_db)
    )
    assert not any(
        isinstance(v, np.ndarray) and v.size >= X_db.size for v in vars(fitted).values()
    )


@pytest.mark.parametrize("k", [1, 7, 50])
def test_kneighbors_equals_brute_force_ranking(fitted, split, k):
    X_db, X_q, _, _ = split
    C_db, C_q = fitted.transform(X_db), fitted.transform(X_q)
    dist, ind = fitted.kneighbors(X_q, n_neighbors=k)
    D = _brute(C_q, C_db)
    ref = np.argsort(D, axis=1, kind="stable")[:, :k]  # ties by index
    np.testing.assert_array_equal(ind, ref)
    np.testing.assert_array_equal(dist, np.take_along_axis(D, ref, axis=1))
    assert dist.dtype == np.int64
    np.testing.assert_array_equal(fitted.kneighbors(X_q, k, return_distance=False), ind)


def test_kneighbors_without_X_excludes_each_point_like_sklearn(fitted, split):
    X_db = split[0]
    C = fitted.transform(X_db)
    k = 6
    dist, ind = fitted.kneighbors(n_neighbors=k)
    assert ind.shape == (len(X_db), k)
    # sklearn's rule on our ranking: k + 1 nearest (ties by index), drop the
    # point itself, or the first when the point is not among them.
    D = _brute(C, C)
    top = np.argsort(D, axis=1, kind="stable")[:, : k + 1]
    for i in range(len(C)):
        row = list(top[i])
        row.remove(i) if i in row else row.pop(0)
        assert ind[i].tolist() == row
        assert dist[i].tolist() == D[i, row].tolist()
    # The same distances as NearestNeighbors, and the same neighbours where
    # no tie crosses the k-th place (its own tie-break is not by index).
    nn = NearestNeighbors(n_neighbors=k, metric="hamming").fit(C.astype(bool))
    d_nn, i_nn = nn.kneighbors()
    np.testing.assert_array_equal(np.rint(d_nn * 16).astype(int), dist)
    others = np.sort(np.where(np.eye(len(C), dtype=bool), 99, D), axis=1)
    clear = others[:, k] > others[:, k - 1]
    assert clear.sum() > 20
    for i in np.flatnonzero(clear):
        assert set(i_nn[i]) == set(ind[i])


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_radius_neighbors_exact(fitted, split, radius):
    X_db, X_q, _, _ = split
    C_db, C_q = fitted.transform(X_db), fitted.transform(X_q)
    dist, ind = fitted.radius_neighbors(X_q, radius=radius)
    D = _brute(C_q, C_db)
    assert dist.dtype == object and len(dist) == len(X_q)
    n_found = 0
    for i in range(len(X_q)):
        rows = np.flatnonzero(D[i] <= radius)
        rows = rows[np.lexsort((rows, D[i, rows]))]
        np.testing.assert_array_equal(ind[i], rows)
        np.testing.assert_array_equal(dist[i], D[i, rows])
        n_found += len(rows)
    assert n_found > 0
    only_ind = fitted.radius_neighbors(X_q[:5], radius=radius, return_distance=False)
    assert all(np.array_equal(a, b) for a, b in zip(only_ind, ind[:5]))


def test_radius_neighbors_without_X_matches_sklearn(fitted, split):
    X_db = split[0]
    C = fitted.transform(X_db)
    dist, ind = fitted.radius_neighbors(radius=1)
    nn = NearestNeighbors(radius=1 / 16 + 1e-9, metric="hamming").fit(C.astype(bool))
    d_nn, i_nn = nn.radius_neighbors(sort_results=True)
    for i in range(len(C)):
        assert i not in ind[i]
        assert sorted(ind[i].tolist()) == sorted(i_nn[i].tolist())
        np.testing.assert_array_equal(np.sort(dist[i]), np.rint(np.sort(d_nn[i]) * 16))
    # The whole ball: every other row.
    _, ind_all = fitted.radius_neighbors(X_db[:3], radius=16)
    assert all(len(r) == len(X_db) for r in ind_all)


def test_beats_pcah_on_digits(fitted, split):
    """Precision of the 10 nearest, same label = relevant, 16 bits."""
    X_db, X_q, y_db, y_q = split
    est = fitted
    p_sh = _precision_at_k(est.transform(X_q), est.transform(X_db), y_q, y_db, 10)
    pca = PCA(16, random_state=0).fit(X_db)
    p_pcah = _precision_at_k(
        (pca.transform(X_q) > 0).astype(np.uint8),
        (pca.transform(X_db) > 0).astype(np.uint8),
        y_q, y_db, 10,
    )
    assert p_sh > p_pcah + 0.03, (p_sh, p_pcah)
    # kneighbors ranks the same way.
    ind = est.kneighbors(X_q, n_neighbors=10, return_distance=False)
    assert np.isclose((y_db[ind] == y_q[:, None]).mean(), p_sh)


def test_partial_fit_indexes_the_latest_chunk(split):
    X_db = split[0]
    est = SemanticHashing(8, hidden_layer_sizes=(8,), random_state=0, device="cpu")
    est.partial_fit(X_db[:200])
    est.partial_fit(X_db[200:500])
    assert est.n_samples_fit_ == 300
    np.testing.assert_array_equal(
        est.packed_codes_, np.packbits(est.transform(X_db[200:500]), axis=1)
    )
    assert est.kneighbors(X_db[:3], n_neighbors=300)[1].max() == 299


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------
def test_calls_before_fit_raise_not_fitted():
    est = SemanticHashing(4)
    for call in (
        lambda: est.kneighbors(),
        lambda: est.kneighbors(np.zeros((2, 5))),
        lambda: est.radius_neighbors(),
        lambda: est.transform(np.zeros((2, 5))),
    ):
        with pytest.raises(NotFittedError):
            call()


def test_bad_queries_and_arguments(fitted, split):
    X_db, X_q, _, _ = split
    n = len(X_db)
    with pytest.raises(ValueError, match="64 features"):
        fitted.kneighbors(X_q[:, :10])
    with pytest.raises(ValueError, match="64 features"):
        fitted.radius_neighbors(X_q[:, :10])
    with pytest.raises(ValueError, match=f"n_neighbors <= n_samples_fit.*n_neighbors = {n + 1}"):
        fitted.kneighbors(X_q, n_neighbors=n + 1)
    with pytest.raises(ValueError, match=f"n_neighbors < n_samples_fit.*n_neighbors = {n}"):
        fitted.kneighbors(n_neighbors=n)
    assert fitted.kneighbors(X_q[:2], n_neighbors=n)[1].shape == (2, n)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_neighbors must be at least 1"):
            fitted.kneighbors(X_q, n_neighbors=bad)
    for bad in (2.0, "3", None, True):
        with pytest.raises(ValueError, match="n_neighbors must be an integer"):
            fitted.kneighbors(X_q, n_neighbors=bad)
    for bad in (-1, -0.5, 17, 100):
        with pytest.raises(ValueError, match=r"radius must be between 0 and n_components=16"):
            fitted.radius_neighbors(X_q, radius=bad)
    for bad in ("2", None, True):
        with pytest.raises(ValueError, match="radius must be a number"):
            fitted.radius_neighbors(X_q, radius=bad)
    with pytest.raises(ValueError, match="n_components"):
        fitted.inverse_transform(np.zeros((2, 8), dtype=np.uint8))


def test_code_activation_must_be_logistic(split):
    with pytest.raises(ValueError, match="code_activation"):
        SemanticHashing(4, code_activation="identity", max_iter=1).fit(split[0][:20])
    with pytest.raises(ValueError, match="binarization"):
        SemanticHashing(4, binarization="sign", max_iter=1).fit(split[0][:20])
    with pytest.raises(ValueError, match="noise_std"):
        SemanticHashing(4, noise_std=-1.0, max_iter=1).fit(split[0][:20])


# ----------------------------------------------------------------------
# persistence: the table is a cache, rebuilt on demand
# ----------------------------------------------------------------------
def test_table_is_transient(fitted, split):
    X_q = split[1]
    assert "_hamming_table" in SemanticHashing._transient_attributes
    fitted.radius_neighbors(X_q[:3], radius=1)
    assert "_hamming_table" in vars(fitted)
    state = fitted.__getstate__()
    attributes = state["_fitted_state"]["attributes"]  # the fitted-state protocol
    assert "_hamming_table" not in state and "_hamming_table" not in attributes
    assert "packed_codes_" in attributes
    copy = pickle.loads(pickle.dumps(fitted))
    assert "_hamming_table" not in vars(copy)
    pairs = zip(copy.radius_neighbors(X_q, radius=2)[1], fitted.radius_neighbors(X_q, radius=2)[1])
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def test_save_load_round_trip(fitted, split, tmp_path):
    X_db, X_q, _, _ = split
    fitted.radius_neighbors(X_q[:3], radius=1)  # the table exists when saving
    fitted.save(tmp_path / "sh.skae")
    assert "_hamming_table" in vars(fitted)  # still there after save
    with np.load(tmp_path / "sh.skae") as archive:
        header = bytes(archive["skae.json"]).decode()
    assert "_hamming_table" not in header and "packed_codes_" in header
    loaded = skae.load(tmp_path / "sh.skae")
    assert type(loaded) is SemanticHashing
    np.testing.assert_array_equal(loaded.packed_codes_, fitted.packed_codes_)
    assert loaded.n_samples_fit_ == fitted.n_samples_fit_
    np.testing.assert_array_equal(loaded.transform(X_q), fitted.transform(X_q))
    for X in (None, X_q):
        d1, i1 = loaded.kneighbors(X, n_neighbors=5)
        d2, i2 = fitted.kneighbors(X, n_neighbors=5)
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_array_equal(i1, i2)
    ours, theirs = loaded.radius_neighbors(X_q, radius=2), fitted.radius_neighbors(X_q, radius=2)
    pairs = zip(ours[1], theirs[1])
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------
# other networks: the conv stack and user modules
# ----------------------------------------------------------------------
def _user_modules():
    encoder = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    decoder = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64))
    return dict(encoder=encoder, decoder=decoder)


def _network(name):
    if name == "conv":
        return dict(encoder="conv", input_shape=(1, 8, 8), conv_channels=(16, 32), batch_size=64)
    return dict(_user_modules(), batch_size=64)



@pytest.mark.parametrize("network", ["conv", "user"])
def test_other_networks_give_binary_codes(split, network, tmp_path):
    """Binary codes from the conv stack and a user module; the user's module
    is not trained in place; the conv model saves, the user module pickles."""
    X_db, X_q, _, _ = split
    params = _network(network)
    if network == "conv":
        params["conv_channels"] = (4, 8)  # small: this test is about plumbing
    before = {k: [p.detach().clone() for p in v.parameters()]
              for k, v in params.items() if isinstance(v, torch.nn.Module)}
    est = fit_quietly(fast_estimator(SemanticHashing, 16, max_iter=3, **params), X_db)
    for key, old in before.items():
        for p, q in zip(params[key].parameters(), old):
            assert torch.equal(p, q)
    codes = est.transform(X_q)
    assert codes.dtype == np.uint8 and codes.shape == (len(X_q), 16)
    assert set(np.unique(codes)) <= {0, 1}
    dist, ind = est.kneighbors(X_q[:5], n_neighbors=3)
    brute = _brute(codes[:5], est.transform(X_db))
    np.testing.assert_array_equal(dist, np.sort(brute, axis=1)[:, :3])
    if network == "conv":
        est.save(tmp_path / "conv.skae")
        np.testing.assert_array_equal(skae.load(tmp_path / "conv.skae").transform(X_q), codes)
    else:
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X_q), codes)


@pytest.mark.slow
@pytest.mark.parametrize("network", ["conv", "user"])
def test_other_networks_beat_pcah(split, network):
    """Trained for real, both networks' codes are balanced and retrieve
    better than PCAH (16 bits, precision of the 10 nearest)."""
    X_db, X_q, y_db, y_q = split
    est = fit_quietly(fast_estimator(SemanticHashing, 16, max_iter=60, **_network(network)), X_db)
    codes = est.transform(X_db)
    means = codes.mean(axis=0)
    assert np.all((means > 0.05) & (means < 0.95)), means
    pca = PCA(16, random_state=0).fit(X_db)
    pcah = _precision_at_k(
        (pca.transform(X_q) > 0).astype(np.uint8), (pca.transform(X_db) > 0).astype(np.uint8),
        y_q, y_db, 10,
    )
    ours = _precision_at_k(est.transform(X_q), codes, y_q, y_db, 10)
    assert ours > pcah + 0.05, (ours, pcah)
