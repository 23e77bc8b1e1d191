"""Binary codes as packed bits: Hamming distances, k-nearest and radius search.

Pure numpy, no torch and no estimator: :class:`skae.SemanticHashing` keeps
its fitted codes packed (``np.packbits``, ``ceil(n_bits / 8)`` bytes a row)
and builds a :class:`HammingTable` from them on demand. The benchmark uses
the same functions for its baselines (LSH, PCAH, ITQ), so every method is
ranked by one implementation.

Two kinds of query:

* :func:`kneighbors_packed`: the ``k`` codes nearest to each query in Hamming
  distance, ties broken by the lower row index. Distances come from XOR and
  a popcount on 64-bit words (``np.bitwise_count`` where numpy has it, a
  256-entry table otherwise), in chunks of bounded memory; each row of small
  integer distances is ranked by a stable argsort (numpy's radix sort for 8-
  and 16-bit integers), so equal distances keep the index order.
* :meth:`HammingTable.radius_neighbors`: every code within Hamming distance
  ``r``, found by looking up the ``sum_{d <= r} C(n_bits, d)`` addresses of
  the Hamming ball around each query in a hash table of the distinct codes,
  as in semantic hashing: the work per query depends on the ball's size and
  the number of results, not on the number of codes stored.
"""

import functools
import itertools
import math

import numpy as np

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
# popcount of every byte value, for numpy < 2.0.
_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
# Elements of the largest temporary (XOR words, addresses) per chunk.
_CHUNK_ELEMENTS = 2**22
# Multipliers of the hash of a multi-word key (odd 64-bit constants).
_HASH_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def popcount(words):
    """Number of set bits of each element of an unsigned integer array.

    Parameters
    ----------
    words : ndarray of unsigned integers

    Returns
    -------
    counts : ndarray of uint8, same shape
    """
    words = np.asarray(words)
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(words)
    as_bytes = np.ascontiguousarray(words).view(np.uint8)
    counts = _POPCOUNT_TABLE[as_bytes].reshape(*words.shape, words.dtype.itemsize)
    return counts.sum(axis=-1, dtype=np.uint8)


def pack_codes(codes):
    """Pack ``{0, 1}`` codes of shape ``(n, n_bits)`` into ``uint8`` bytes.

    Bit ``j`` of a row is bit ``7 - j % 8`` of byte ``j // 8``
    (``np.packbits`` order); the last byte is zero-padded.

    Returns
    -------
    packed : ndarray of uint8, shape (n, ceil(n_bits / 8))
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D, got shape {codes.shape}.")
    return np.packbits(codes.astype(bool, copy=False), axis=1)


def unpack_codes(packed, n_bits):
    """Inverse of :func:`pack_codes`: ``{0, 1}`` uint8 of shape ``(n, n_bits)``."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=n_bits)


def to_words(packed):
    """Packed bytes as rows of uint64 words (zero-padded to a multiple of 8 bytes).

    XOR and popcount act bitwise, so the byte order inside a word does not
    matter as long as both operands use the same.
    """
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n, n_bytes = packed.shape
    n_words = max(1, -(-n_bytes // 8))
    if n_bytes != 8 * n_words:
        padded = np.zeros((n, 8 * n_words), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        packed = padded
    return packed.view(np.uint64)


def hamming_distances(query_words, data_words):
    """``(n_queries, n_data)`` Hamming distances of word rows.

    uint8 when the codes have fewer than 256 bits (one radix pass sorts
    them), else uint16.
    """
    counts = popcount(query_words[:, None, :] ^ data_words[None, :, :])
    n_words = counts.shape[2]
    if n_words == 1:
        return counts[:, :, 0]
    return counts.sum(axis=2, dtype=np.uint8 if n_words < 4 else np.uint16)


def kneighbors_packed(query, data, n_neighbors, exclude_self=False):
    """The ``n_neighbors`` rows of ``data`` nearest to each row of ``query``.

    The distances of a chunk of queries to every row are small integers
    (at most the code width), so a stable sort of each row (numpy's radix
    sort for 8- and 16-bit integers, linear in the number of rows) ranks
    them with ties in index order.

    Parameters
    ----------
    query, data : ndarray of uint8, shape (n, n_bytes)
        Packed codes (:func:`pack_codes`) of the same width.
    n_neighbors : int
        Number of neighbours, ``1 <= n_neighbors <= len(data)``
        (``< len(data)`` with ``exclude_self``).
    exclude_self : bool
        ``query`` is ``data`` itself and each point is not its own
        neighbour, with :class:`sklearn.neighbors.NearestNeighbors`'s rule:
        ``n_neighbors + 1`` are found and row ``i`` removed from row ``i``'s
        list; when it is not among them (more than ``n_neighbors`` earlier
        duplicates) the first one is removed instead.

    Returns
    -------
    distances : ndarray of int64, shape (n_queries, n_neighbors)
        Hamming distances (numbers of differing bits), ascending.
    indices : ndarray of intp, shape (n_queries, n_neighbors)
        Row indices into ``data``; equal distances in increasing index order.
    """
    q_words, d_words = to_words(query), to_words(data)
    n_data, n_words = d_words.shape
    n_queries = len(q_words)
    k = n_neighbors + 1 if exclude_self else n_neighbors
    # Chunks of about a million distances stay in the cache.
    step = max(1, _CHUNK_ELEMENTS // 4 // max(1, n_data * n_words))
    dist_out = np.empty((n_queries, k), dtype=np.int64)
    ind_out = np.empty((n_queries, k), dtype=np.intp)
    for start in range(0, n_queries, step):
        dist = hamming_distances(q_words[start : start + step], d_words)
        ind = np.argsort(dist, axis=1, kind="stable")[:, :k]
        dist_out[start : start + step] = np.take_along_axis(dist, ind, axis=1)
        ind_out[start : start + step] = ind
    if not exclude_self:
        return dist_out, ind_out
    keep = ind_out != np.arange(n_queries)[:, None]
    keep[np.all(keep, axis=1), 0] = False
    shape = (n_queries, n_neighbors)
    return dist_out[keep].reshape(shape), ind_out[keep].reshape(shape)


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


def _hash(words, n_slot_bits):
    """Slot of each word row in a table of ``2**n_slot_bits`` slots, and its fingerprint.

    The fingerprint is a uint8 from the 8 hash bits below the slot's, with
    the lowest bit set: never 0, the mark of an empty slot.
    """
    h = np.zeros(len(words), dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j] * _HASH_MULTIPLIERS[j % len(_HASH_MULTIPLIERS)] + np.uint64(j)
    # Fibonacci hashing: the high bits of a multiplicative hash.
    h *= _HASH_MULTIPLIERS[0]
    slot = (h >> np.uint64(64 - n_slot_bits)).astype(np.intp)
    fingerprint = (h >> np.uint64(max(0, 56 - n_slot_bits))).astype(np.uint8)
    fingerprint |= np.uint8(1)
    return slot, fingerprint


class HammingTable:
    """Hash table from each distinct code (an address) to its bucket of rows.

    Built once from packed codes; holds the distinct codes as uint64 words
    (``keys``), the rows sorted by code (``order``) with each bucket's start
    (``starts``), and an open-addressing table (linear probing, at most a
    quarter full) from the hash of a code to its position among the distinct codes.
    Each slot holds an 8-bit fingerprint of its code's hash too
    (``slot_fingerprints``, 0 when empty), so that a probe that misses, the
    common case in a Hamming ball, reads one byte a slot: the fingerprints
    of a million codes (4 MB) stay in the cache where their words (32 MB)
    did not; a full key is compared only when the fingerprints agree.
    Lookups of any number of addresses are vectorised: each round of probing
    is one numpy pass over the addresses still unresolved.

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
        self._n_slot_bits = max(1, int(4 * len(keys) - 1).bit_length())
        self.slot_fingerprints, self.slot_ids = self._build_slots()

    def _build_slots(self):
        size = 1 << self._n_slot_bits
        id_dtype = np.int32 if len(self.keys) < 2**31 else np.int64
        slot_ids = np.full(size, -1, dtype=id_dtype)
        pos, fingerprints = _hash(self.keys, self._n_slot_bits)
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
            pos[pending] = (pos[pending] + 1) & (size - 1)
        slot_fingerprints = np.zeros(size, dtype=np.uint8)
        taken = slot_ids >= 0
        slot_fingerprints[taken] = fingerprints[slot_ids[taken]]
        return slot_fingerprints, slot_ids

    @property
    def nbytes(self):
        """Memory held by the table: distinct codes, buckets and slots."""
        return sum(
            a.nbytes
            for a in (self.keys, self.order, self.starts, self.slot_fingerprints, self.slot_ids)
        )

    def lookup(self, addresses):
        """Position among the distinct codes of each address row, -1 if absent."""
        n = len(addresses)
        found = np.full(n, -1, dtype=np.int64)
        mask = (1 << self._n_slot_bits) - 1
        pos, fingerprints = _hash(addresses, self._n_slot_bits)
        active = np.arange(n)
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
            active, pos, fingerprints = active[more], (pos[more] + 1) & mask, fingerprints[more]
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
            parts.append(
                (hits // len(masks) + start, weights[hits % len(masks)], found[hits])
            )
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
