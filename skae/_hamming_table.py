"""Radius search in Hamming space by hash-table lookups, as in semantic hashing.

:meth:`HammingTable.radius_neighbors` returns every stored code within
Hamming distance ``r`` of each query by looking up the
``sum_{d <= r} C(n_bits, d)`` addresses of the Hamming ball around it in a
hash table of the distinct codes: the work per query depends on the ball's
size and the number of results, not on the number of codes stored. Pure
numpy; :class:`skae.SemanticHashing` builds the table from its packed codes
(:mod:`skae._hamming`) on the first radius query.
"""

import functools
import itertools
import math

import numpy as np

from ._hamming import hamming_distances, pack_codes, to_words

# Elements of the largest temporary (ball addresses, scanned distances) per chunk.
_CHUNK_ELEMENTS = 2**22

# Bits of the lookup filter per distinct code (about 1 in 16 set).
_FILTER_BITS_PER_CODE = 16
# Multipliers of the hash of a multi-word key (odd 64-bit constants).
_HASH_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def ball_size(n_bits, radius):
    """Number of addresses within Hamming distance ``radius`` of one code."""
    return sum(math.comb(n_bits, d) for d in range(radius + 1))


@functools.lru_cache(maxsize=16)
def ball_masks(n_bits, radius):
    """XOR masks of the Hamming ball, enumerated once per ``(n_bits, radius)``.

    Returns
    -------
    masks : ndarray of uint64, shape (ball_size, n_words)
        Every code of weight ``<= radius``, packed like :func:`pack_codes`
        then :func:`to_words`; weight 0 (the query's own address) first.
    weights : ndarray of int64, shape (ball_size,)
        The weight of each mask: the distance of the address it gives.
    """
    n_masks = ball_size(n_bits, radius)
    bits = np.zeros((n_masks, n_bits), dtype=bool)
    weights = np.empty(n_masks, dtype=np.int64)
    row = 0
    for d in range(radius + 1):
        positions = np.array(list(itertools.combinations(range(n_bits), d)), dtype=np.intp)
        count = len(positions)
        if d:
            bits[np.repeat(np.arange(row, row + count), d), positions.ravel()] = True
        weights[row : row + count] = d
        row += count
    masks = to_words(pack_codes(bits))
    masks.flags.writeable = False
    weights.flags.writeable = False
    return masks, weights


def _mix(words):
    """A 64-bit hash of each word row (multiply-xor, then Fibonacci mixing)."""
    h = np.zeros(len(words), dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j] * _HASH_MULTIPLIERS[j % len(_HASH_MULTIPLIERS)] + np.uint64(j)
    h *= _HASH_MULTIPLIERS[0]
    return h


def _slot(h, n_slots):
    """Slot of each hash in a table of ``n_slots`` slots, and its fingerprint.

    A second multiplication decorrelates the slot from the filter's bit;
    the slot is ``(h2_high32 * n_slots) >> 32``, the fingerprint a uint8
    from the bits below, with the lowest bit set: never 0, the mark of an
    empty slot.
    """
    h2 = h * _HASH_MULTIPLIERS[1]
    slot = (((h2 >> np.uint64(32)) * np.uint64(n_slots)) >> np.uint64(32)).astype(np.intp)
    fingerprint = (h2 >> np.uint64(24)).astype(np.uint8)
    fingerprint |= np.uint8(1)
    return slot, fingerprint


def _next_slot(pos, n_slots):
    """Linear probing: the slot after each, wrapping around."""
    pos += 1
    pos[pos == n_slots] = 0
    return pos


def _filter_bit(h, n_filter_bits):
    """Bit of each hash in a filter of ``n_filter_bits`` bits (``(h_high32 * m) >> 32``)."""
    return ((h >> np.uint64(32)) * np.uint64(n_filter_bits)) >> np.uint64(32)


class HammingTable:
    """Hash table from each distinct code (an address) to its bucket of rows.

    Built once from packed codes; holds the distinct codes as uint64 words
    (``keys``), the rows sorted by code (``order``) with each bucket's start
    (``starts``), and an open-addressing table of 4 slots a distinct code
    (linear probing, a quarter full at every size) from the hash of a code
    to its position among the distinct codes. Each slot holds an 8-bit
    fingerprint of its code's hash too (``slot_fingerprints``, 0 when
    empty), so a probe reads one byte a slot and compares a full key only
    when the fingerprints agree.

    Most addresses of a Hamming ball are absent. A filter of 16 bits a
    distinct code (``filter``, one hash bit set a code, about one bit in 16
    set at every size) turns away all but about 6% of them before any
    probe; a million codes' filter (2 MB) stays in a core's cache where
    their slots (20 MB) do not, so the cost of a lookup barely depends on
    the number of codes stored. Lookups of any number of addresses are
    vectorised: each round of probing is one numpy pass over the addresses
    still unresolved.

    Parameters
    ----------
    packed : ndarray of uint8, shape (n_rows, n_bytes)
        Packed codes (:func:`pack_codes`).
    n_bits : int
        Code width.
    """

    def __init__(self, packed, n_bits):
        self.n_bits = int(n_bits)
        words = to_words(packed)
        self.n_rows = len(words)
        if words.shape[1] == 1:
            keys, inverse = np.unique(words[:, 0], return_inverse=True)
            keys = keys[:, None]
        else:
            keys, inverse = np.unique(words, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        index_dtype = np.int32 if self.n_rows < 2**31 else np.int64
        self.keys = keys
        self.order = np.argsort(inverse, kind="stable").astype(index_dtype)
        counts = np.bincount(inverse, minlength=len(keys))
        self.starts = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.starts[1:])
        self._n_slots = 4 * max(1, len(keys))
        self.slot_fingerprints, self.slot_ids = self._build_slots()
        self.filter = self._build_filter()

    def _build_slots(self):
        size = self._n_slots
        id_dtype = np.int32 if len(self.keys) < 2**31 else np.int64
        slot_ids = np.full(size, -1, dtype=id_dtype)
        pos, fingerprints = _slot(_mix(self.keys), self._n_slots)
        pending = np.arange(len(self.keys))
        while pending.size:
            p = pos[pending]
            free = slot_ids[p] < 0
            claimants, claimed = pending[free], p[free]
            # One winner per free slot: the first claimant.
            _, first = np.unique(claimed, return_index=True)
            slot_ids[claimed[first]] = claimants[first]
            won = np.zeros(len(pending), dtype=bool)
            won[np.flatnonzero(free)[first]] = True
            pending = pending[~won]
            pos[pending] = _next_slot(pos[pending], size)
        slot_fingerprints = np.zeros(size, dtype=np.uint8)
        taken = slot_ids >= 0
        slot_fingerprints[taken] = fingerprints[slot_ids[taken]]
        return slot_fingerprints, slot_ids

    def _build_filter(self):
        """A bit array, ``_FILTER_BITS_PER_CODE`` bits a distinct code, each code's bit set.

        Its density (about one bit in 16 set) is the same whatever the number
        of codes, and a million codes' filter (2 MB) stays in a core's cache.
        """
        self._n_filter_bits = _FILTER_BITS_PER_CODE * max(8, len(self.keys))
        filter_ = np.zeros(self._n_filter_bits // 8, dtype=np.uint8)
        bit = _filter_bit(_mix(self.keys), self._n_filter_bits)
        ones = np.left_shift(1, bit & np.uint64(7)).astype(np.uint8)
        np.bitwise_or.at(filter_, bit >> np.uint64(3), ones)
        return filter_

    @property
    def nbytes(self):
        """Memory held by the table: distinct codes, buckets and slots."""
        return sum(
            a.nbytes
            for a in (
                self.keys,
                self.order,
                self.starts,
                self.slot_fingerprints,
                self.slot_ids,
                self.filter,
            )
        )

    def lookup(self, addresses):
        """Position among the distinct codes of each address row, -1 if absent."""
        n = len(addresses)
        found = np.full(n, -1, dtype=np.int64)
        h = _mix(addresses)
        # Most addresses of a Hamming ball are absent: the filter, small
        # enough to stay in the cache, turns away all but about one in 16.
        bit = _filter_bit(h, self._n_filter_bits)
        active = np.flatnonzero((self.filter[bit >> np.uint64(3)] >> (bit & np.uint64(7))) & 1)
        pos, fingerprints = _slot(h[active], self._n_slots)
        while active.size:
            slot = self.slot_fingerprints[pos]
            occupied = slot != 0
            same = np.flatnonzero(slot == fingerprints)  # fingerprints are never 0
            if same.size:
                ids = self.slot_ids[pos[same]]
                full = np.all(self.keys[ids] == addresses[active[same]], axis=1)
                same, ids = same[full], ids[full]
                found[active[same]] = ids
            more = occupied
            more[same] = False
            active, pos, fingerprints = (
                active[more],
                _next_slot(pos[more], self._n_slots),
                fingerprints[more],
            )
        return found

    def radius_neighbors(self, query, radius, exclude_self=False):
        """Every stored row within Hamming distance ``radius`` of each query.

        Parameters
        ----------
        query : ndarray of uint8, shape (n_queries, n_bytes)
            Packed query codes.
        radius : int
            ``0 <= radius <= n_bits``.
        exclude_self : bool
            The queries are the stored rows themselves: row ``i`` is removed
            from row ``i``'s result.

        Returns
        -------
        query_index, distances, indices : ndarray of int64
            One entry per (query, neighbour) pair, sorted by query, then
            distance, then row index.
        """
        q_words = to_words(query)
        if ball_size(self.n_bits, radius) > len(self.keys):
            # A ball with more addresses than there are distinct codes:
            # comparing with each distinct code is cheaper and exact too.
            return self._radius_scan(q_words, radius, exclude_self)
        masks, weights = ball_masks(self.n_bits, radius)
        step = max(1, _CHUNK_ELEMENTS // (len(masks) * masks.shape[1]))
        parts = []
        for start in range(0, len(q_words), step):
            chunk = q_words[start : start + step]
            addresses = (chunk[:, None, :] ^ masks[None, :, :]).reshape(-1, masks.shape[1])
            found = self.lookup(addresses)
            hits = np.flatnonzero(found >= 0)
            parts.append((hits // len(masks) + start, weights[hits % len(masks)], found[hits]))
        q_idx = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
        dist = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
        key = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int64)
        return self._expand(q_idx, dist, key, exclude_self)

    def _radius_scan(self, q_words, radius, exclude_self):
        step = max(1, _CHUNK_ELEMENTS // max(1, self.keys.size))
        parts = []
        for start in range(0, len(q_words), step):
            dist = hamming_distances(q_words[start : start + step], self.keys)
            q_idx, key = np.nonzero(dist <= radius)
            parts.append((q_idx + start, dist[q_idx, key].astype(np.int64), key))
        q_idx = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
        dist = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
        key = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int64)
        return self._expand(q_idx, dist, key, exclude_self)

    def _expand(self, q_idx, dist, key, exclude_self):
        """(query, distance, distinct code) hits to sorted (query, distance, row)."""
        counts = self.starts[key + 1] - self.starts[key]
        total = int(counts.sum())
        offsets = np.repeat(self.starts[key] - np.cumsum(counts) + counts, counts)
        rows = self.order[offsets + np.arange(total)].astype(np.int64)
        q_idx = np.repeat(q_idx.astype(np.int64), counts)
        dist = np.repeat(dist.astype(np.int64), counts)
        if exclude_self:
            keep = rows != q_idx
            q_idx, dist, rows = q_idx[keep], dist[keep], rows[keep]
        order = np.lexsort((rows, dist, q_idx))
        return q_idx[order], dist[order], rows[order]


def split_by_query(n_queries, query_index, *columns):
    """Per-query object arrays of arrays from flat, query-sorted columns."""
    bounds = np.searchsorted(query_index, np.arange(1, n_queries))
    out = []
    for column in columns:
        parts = np.split(column, bounds)
        arr = np.empty(n_queries, dtype=object)
        for i, part in enumerate(parts[:n_queries]):
            arr[i] = part
        out.append(arr)
    return out
