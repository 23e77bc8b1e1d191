"""The packed-bit Hamming index (skae._hamming), against brute force on unpacked bits."""

import numpy as np
import pytest

from skae import _hamming
from skae._hamming import (
    HammingTable,
    ball_masks,
    ball_size,
    kneighbors_packed,
    pack_codes,
    popcount,
    split_by_query,
    to_words,
    unpack_codes,
)


def _codes(n, n_bits, seed=0, duplicates=True):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2, (n, n_bits)).astype(np.uint8)
    if duplicates and n > 30:  # ties at distance 0 and a bucket of several rows
        codes[[7, 12, 30]] = codes[3]
    return codes


def _brute(q, db):
    """Hamming distances of unpacked {0,1} rows, the slow obvious way."""
    return (q[:, None, :] != db[None, :, :]).sum(axis=2)


def _brute_ranking(D, k):
    index = np.broadcast_to(np.arange(D.shape[1]), D.shape)
    order = np.lexsort((index, D), axis=1)[:, :k]
    return np.take_along_axis(D, order, axis=1), order


def test_popcount_table_equals_bitwise_count(monkeypatch):
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([bin(int(w)).count("1") for w in words])
    np.testing.assert_array_equal(popcount(words), expected)
    monkeypatch.setattr(_hamming, "_HAS_BITWISE_COUNT", False)
    np.testing.assert_array_equal(popcount(words), expected)
    np.testing.assert_array_equal(popcount(words.view(np.uint8)), popcount(words.view(np.uint8)))


@pytest.mark.parametrize("n_bits", [1, 7, 8, 9, 32, 64, 65, 130])
def test_pack_round_trip_and_words(n_bits):
    codes = _codes(20, n_bits)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (20, -(-n_bits // 8))
    np.testing.assert_array_equal(unpack_codes(packed, n_bits), codes)
    words = to_words(packed)
    assert words.dtype == np.uint64 and words.shape == (20, -(-n_bits // 64))
    # popcount of the XOR of word rows is the Hamming distance.
    d = popcount(words[:1] ^ words).sum(axis=1)
    np.testing.assert_array_equal(d, _brute(codes[:1], codes)[0])


@pytest.mark.parametrize("n_bits", [5, 32, 64, 100])
@pytest.mark.parametrize("k", [1, 6, 40])
def test_kneighbors_equals_brute_force_ranking(n_bits, k):
    db, q = _codes(300, n_bits), _codes(25, n_bits, seed=1)
    q[0] = db[3]  # a query with several rows at distance 0
    dist, ind = kneighbors_packed(pack_codes(q), pack_codes(db), k)
    ref_dist, ref_ind = _brute_ranking(_brute(q, db), k)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)
    if n_bits >= 32:  # no chance duplicates of row 3
        assert ind[0, :4].tolist() == [3, 7, 12, 30][: min(4, k)]


def test_kneighbors_all_rows_and_lookup_table_path(monkeypatch):
    db = _codes(50, 20)
    monkeypatch.setattr(_hamming, "_HAS_BITWISE_COUNT", False)
    dist, ind = kneighbors_packed(pack_codes(db[:5]), pack_codes(db), 50)
    ref_dist, ref_ind = _brute_ranking(_brute(db[:5], db), 50)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_kneighbors_small_chunks(monkeypatch):
    monkeypatch.setattr(_hamming, "_CHUNK_ELEMENTS", 64)
    db, q = _codes(100, 16), _codes(30, 16, seed=2)
    dist, ind = kneighbors_packed(pack_codes(q), pack_codes(db), 9)
    ref_dist, ref_ind = _brute_ranking(_brute(q, db), 9)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_kneighbors_exclude_self_follows_sklearn_rule():
    db = _codes(40, 12)
    # Row 30 has earlier duplicates 3, 7, 12: with k = 2, the 3 nearest of
    # row 30 are 3, 7, 12 (ties by index) and do not hold 30 itself, so the
    # first is dropped, as NearestNeighbors does.
    dist, ind = kneighbors_packed(pack_codes(db), pack_codes(db), 2, exclude_self=True)
    assert ind[30].tolist() == [7, 12] and dist[30].tolist() == [0, 0]
    assert ind[3].tolist() == [7, 12]
    D = _brute(db, db)
    D_self = D + np.where(np.eye(40, dtype=bool), 10**6, 0)
    for i in range(40):
        if i in (3, 7, 12, 30):
            continue
        ref_dist, ref_ind = _brute_ranking(D_self[i : i + 1], 2)
        np.testing.assert_array_equal(ind[i], ref_ind[0])
        np.testing.assert_array_equal(dist[i], ref_dist[0])


@pytest.mark.parametrize("n_bits,radius", [(3, 1), (16, 2), (32, 0), (32, 3)])
def test_ball_masks(n_bits, radius):
    masks, weights = ball_masks(n_bits, radius)
    assert len(masks) == ball_size(n_bits, radius) == len(weights)
    bits = unpack_codes(masks.view(np.uint8), n_bits)
    np.testing.assert_array_equal(bits.sum(axis=1), weights)
    assert len(np.unique(masks, axis=0)) == len(masks)  # each address once
    assert weights[0] == 0 and np.all(np.diff(weights) >= 0)
    assert not masks.flags.writeable  # the cached copy cannot be changed


def _brute_radius(q, db, radius, exclude_self=False):
    D = _brute(q, db)
    qi, rows = np.nonzero(D <= radius)
    if exclude_self:
        keep = qi != rows
        qi, rows = qi[keep], rows[keep]
    order = np.lexsort((rows, D[qi, rows], qi))
    return qi[order], D[qi, rows][order], rows[order]


@pytest.mark.parametrize("n_bits", [6, 32, 64, 100])
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_radius_neighbors_exact(n_bits, radius):
    db, q = _codes(400, n_bits), _codes(40, n_bits, seed=3)
    q[:20] = db[:20]  # queries with hits
    q[20, :] = db[21]
    q[20, :radius] ^= 1  # one at distance exactly `radius`
    if n_bits == 100:  # codes that share their first 64-bit word only
        db[100:120, :64] = db[99, :64]
        q[21] = db[99]
        q[21, -1] ^= 1
    table = HammingTable(pack_codes(db), n_bits)
    got = table.radius_neighbors(pack_codes(q), radius)
    for a, b in zip(got, _brute_radius(q, db, radius)):
        np.testing.assert_array_equal(a, b)


def test_radius_neighbors_exclude_self_and_scan_fallback():
    db = _codes(60, 6)  # 64 addresses: large balls take the scan path
    table = HammingTable(pack_codes(db), 6)
    for radius in (0, 2, 6):
        got = table.radius_neighbors(pack_codes(db), radius, exclude_self=True)
        for a, b in zip(got, _brute_radius(db, db, radius, exclude_self=True)):
            np.testing.assert_array_equal(a, b)


def test_table_handles_probe_collisions(monkeypatch):
    """Many codes hashed to the same slot, with the same fingerprint: linear
    probing and the full-key comparison still find each."""
    db = _codes(200, 24)

    def one_slot(words, n_slot_bits):
        return np.zeros(len(words), dtype=np.intp), np.ones(len(words), dtype=np.uint8)

    monkeypatch.setattr(_hamming, "_hash", one_slot)
    table = HammingTable(pack_codes(db), 24)
    got = table.radius_neighbors(pack_codes(db[:10]), 1)
    for a, b in zip(got, _brute_radius(db[:10], db, 1)):
        np.testing.assert_array_equal(a, b)


def test_table_buckets_and_memory():
    db = _codes(100, 32)
    table = HammingTable(pack_codes(db), 32)
    assert len(table.keys) == 97  # three duplicates of row 3
    sizes = np.diff(table.starts)
    assert sizes.sum() == 100 and sizes.max() == 4
    assert sorted(table.order.tolist()) == list(range(100))
    # Slots at most a quarter full; the memory is O(n), not O(2**n_bits).
    assert (table.slot_ids >= 0).sum() == 97 and len(table.slot_ids) >= 4 * 97
    assert table.nbytes < 100 * 100


def test_split_by_query():
    qi = np.array([0, 0, 2, 2, 2])
    dist, ind = split_by_query(4, qi, np.arange(5), np.arange(5) * 10)
    assert dist.dtype == object and len(dist) == 4
    assert [d.tolist() for d in dist] == [[0, 1], [], [2, 3, 4], []]
    assert [i.tolist() for i in ind] == [[0, 10], [], [20, 30, 40], []]
