"""Packed bits and k-nearest search (skae._hamming), against brute force on unpacked bits."""

import numpy as np
import pytest
from _helpers import brute_hamming, random_codes

from skae import _hamming
from skae._hamming import kneighbors_packed, pack_codes, popcount, to_words, unpack_codes


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
    codes = random_codes(20, n_bits)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (20, -(-n_bits // 8))
    np.testing.assert_array_equal(unpack_codes(packed, n_bits), codes)
    words = to_words(packed)
    assert words.dtype == np.uint64 and words.shape == (20, -(-n_bits // 64))
    # popcount of the XOR of word rows is the Hamming distance.
    d = popcount(words[:1] ^ words).sum(axis=1)
    np.testing.assert_array_equal(d, brute_hamming(codes[:1], codes)[0])


@pytest.mark.parametrize("n_bits", [5, 32, 64, 100])
@pytest.mark.parametrize("k", [1, 6, 40])
def test_kneighbors_equals_brute_force_ranking(n_bits, k):
    db, q = random_codes(300, n_bits), random_codes(25, n_bits, seed=1)
    q[0] = db[3]  # a query with several rows at distance 0
    dist, ind = kneighbors_packed(pack_codes(q), pack_codes(db), k)
    ref_dist, ref_ind = _brute_ranking(brute_hamming(q, db), k)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)
    if n_bits >= 32:  # no chance duplicates of row 3
        assert ind[0, :4].tolist() == [3, 7, 12, 30][: min(4, k)]


def test_kneighbors_all_rows_and_lookup_table_path(monkeypatch):
    db = random_codes(50, 20)
    monkeypatch.setattr(_hamming, "_HAS_BITWISE_COUNT", False)
    dist, ind = kneighbors_packed(pack_codes(db[:5]), pack_codes(db), 50)
    ref_dist, ref_ind = _brute_ranking(brute_hamming(db[:5], db), 50)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_kneighbors_small_chunks(monkeypatch):
    monkeypatch.setattr(_hamming, "_CHUNK_ELEMENTS", 64)
    db, q = random_codes(100, 16), random_codes(30, 16, seed=2)
    dist, ind = kneighbors_packed(pack_codes(q), pack_codes(db), 9)
    ref_dist, ref_ind = _brute_ranking(brute_hamming(q, db), 9)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_kneighbors_exclude_self_follows_sklearn_rule():
    db = random_codes(40, 12)
    # Row 30 has earlier duplicates 3, 7, 12: with k = 2, the 3 nearest of
    # row 30 are 3, 7, 12 (ties by index) and do not hold 30 itself, so the
    # first is dropped, as NearestNeighbors does.
    dist, ind = kneighbors_packed(pack_codes(db), pack_codes(db), 2, exclude_self=True)
    assert ind[30].tolist() == [7, 12] and dist[30].tolist() == [0, 0]
    assert ind[3].tolist() == [7, 12]
    D = brute_hamming(db, db)
    D_self = D + np.where(np.eye(40, dtype=bool), 10**6, 0)
    for i in range(40):
        if i in (3, 7, 12, 30):
            continue
        ref_dist, ref_ind = _brute_ranking(D_self[i : i + 1], 2)
        np.testing.assert_array_equal(ind[i], ref_ind[0])
        np.testing.assert_array_equal(dist[i], ref_dist[0])


@pytest.mark.parametrize(
    "n_data, n_bits, k",
    [
        (5000, 16, 3),  # rows of 625 words: lane counts over several groups; many ties
        (300, 300, 5),  # 16-bit distances
        (999, 24, 62),  # the largest k that counts (16 k <= 1000 columns)
        (999, 24, 63),  # the smallest k that sorts whole rows
    ],
)
def test_kneighbors_counting_and_sorting_equal_brute_force(n_data, n_bits, k):
    db, q = random_codes(n_data, n_bits), random_codes(70, n_bits, seed=3)
    q[5] = db[3]
    dist, ind = kneighbors_packed(pack_codes(q), pack_codes(db), k)
    ref_dist, ref_ind = _brute_ranking(brute_hamming(q, db), k)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_row_counts_add_byte_lanes_without_carry():
    rng = np.random.default_rng(0)
    mask = rng.random((7, 8 * 700)) < 0.9  # 700 words a row: three groups of up to 255
    mask[0] = True  # every lane of every word set
    np.testing.assert_array_equal(_hamming._row_counts(mask), mask.sum(axis=1))


def test_thresholds_hold_the_kth_smallest_value():
    rng = np.random.default_rng(1)
    dist = rng.integers(0, 20, (9, 64)).astype(np.uint8)
    dist[0, :2] = 0  # a row that jumps by two past a sparse start
    mask = np.empty(dist.shape, dtype=bool)
    for k in (1, 7, 40, 64):
        threshold = _hamming._thresholds(dist, k, mask).astype(int)
        kth = np.sort(dist, axis=1)[:, k - 1]
        assert np.all(threshold >= kth) and np.all(threshold <= kth + 1)
        np.testing.assert_array_equal(mask, dist <= threshold[:, None])
