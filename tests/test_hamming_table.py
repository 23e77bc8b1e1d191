"""Radius search by hash-table lookups (skae._hamming_table), against brute force."""

import numpy as np
import pytest
from _helpers import brute_hamming, random_codes

from skae import _hamming_table
from skae._hamming import pack_codes, unpack_codes
from skae._hamming_table import HammingTable, ball_masks, ball_size, split_by_query


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
    D = brute_hamming(q, db)
    qi, rows = np.nonzero(D <= radius)
    if exclude_self:
        keep = qi != rows
        qi, rows = qi[keep], rows[keep]
    order = np.lexsort((rows, D[qi, rows], qi))
    return qi[order], D[qi, rows][order], rows[order]


@pytest.mark.parametrize("n_bits", [6, 32, 64, 100])
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_radius_neighbors_exact(n_bits, radius):
    db, q = random_codes(400, n_bits), random_codes(40, n_bits, seed=3)
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
    db = random_codes(60, 6)  # 64 addresses: large balls take the scan path
    table = HammingTable(pack_codes(db), 6)
    for radius in (0, 2, 6):
        got = table.radius_neighbors(pack_codes(db), radius, exclude_self=True)
        for a, b in zip(got, _brute_radius(db, db, radius, exclude_self=True)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("first", ["first", "last"])
def test_table_handles_probe_collisions(monkeypatch, first):
    """Many codes hashed to the same slot, with the same fingerprint: linear
    probing (wrapping around from the last slot) and the full-key
    comparison still find each."""
    db = random_codes(200, 24)

    def one_slot(h, n_slots):
        slot = 0 if first == "first" else n_slots - 1
        return np.full(len(h), slot, dtype=np.intp), np.ones(len(h), dtype=np.uint8)

    monkeypatch.setattr(_hamming_table, "_slot", one_slot)
    table = HammingTable(pack_codes(db), 24)
    got = table.radius_neighbors(pack_codes(db[:10]), 1)
    for a, b in zip(got, _brute_radius(db[:10], db, 1)):
        np.testing.assert_array_equal(a, b)


def test_filter_holds_every_code_and_one_bit_in_sixteen():
    for n in (1000, 50_000):
        db = random_codes(n, 32, seed=n)
        table = HammingTable(pack_codes(db), 32)
        bits = np.unpackbits(table.filter, bitorder="little")
        assert len(bits) == 16 * len(table.keys)
        keys_bits = _hamming_table._filter_bit(_hamming_table._mix(table.keys), len(bits)).astype(
            np.intp
        )
        assert bits[keys_bits].all()
        # n codes in 16n bits: 1 - exp(-1/16) = 6.06% set, at any size.
        assert 0.057 < bits.mean() < 0.0625


def test_filter_collisions_do_not_lose_or_invent_neighbours(monkeypatch):
    """A filter that lets every address through (all on bit 0) changes nothing."""
    db = random_codes(300, 20)
    monkeypatch.setattr(
        _hamming_table, "_filter_bit", lambda h, n_bits: np.zeros(len(h), np.uint64)
    )
    table = HammingTable(pack_codes(db), 20)
    assert table.filter[0] == 1 and not table.filter[1:].any()
    got = table.radius_neighbors(pack_codes(db[:20]), 2)
    for a, b in zip(got, _brute_radius(db[:20], db, 2)):
        np.testing.assert_array_equal(a, b)


def test_table_buckets_and_memory():
    db = random_codes(100, 32)
    table = HammingTable(pack_codes(db), 32)
    assert len(table.keys) == 97  # three duplicates of row 3
    sizes = np.diff(table.starts)
    assert sizes.sum() == 100 and sizes.max() == 4
    assert sorted(table.order.tolist()) == list(range(100))
    # Slots at most a quarter full; the memory is O(n), not O(2**n_bits).
    assert (table.slot_ids >= 0).sum() == 97 and len(table.slot_ids) == 4 * 97
    assert table.nbytes < 100 * 100


def test_split_by_query():
    qi = np.array([0, 0, 2, 2, 2])
    dist, ind = split_by_query(4, qi, np.arange(5), np.arange(5) * 10)
    assert dist.dtype == object and len(dist) == 4
    assert [d.tolist() for d in dist] == [[0, 1], [], [2, 3, 4], []]
    assert [i.tolist() for i in ind] == [[0, 10], [], [20, 30, 40], []]
