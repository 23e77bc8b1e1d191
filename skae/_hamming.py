"""Binary codes as packed bits: packing, Hamming distances, k-nearest search.

Pure numpy, no torch and no estimator: :class:`skae.SemanticHashing` keeps
its fitted codes packed (``np.packbits``, ``ceil(n_bits / 8)`` bytes a row).
The benchmark uses the same functions for its baselines (LSH, PCAH, ITQ),
so every method is ranked by one implementation.

:func:`kneighbors_packed` finds the ``k`` codes nearest to each query in
Hamming distance, ties broken by the lower row index. Distances come from
XOR and a popcount on 64-bit words (32-bit for codes of up to 32 bits;
``np.bitwise_count`` where numpy has it, a 256-entry table otherwise), in
chunks of bounded memory. The distances are small integers, so each query's
``k``-th distance is found by counting, and only the few rows within it are
gathered and ranked, equal distances in index order. Radius search, by
hash-table lookups of the Hamming ball, is in :mod:`skae._hamming_table`.
"""

import numpy as np

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
# popcount of every byte value, for numpy < 2.0.
_POPCOUNT_TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
# Elements of the largest temporary (XOR words, addresses) per chunk.
_CHUNK_ELEMENTS = 2**22


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

    For a chunk of queries, the distances to every row are small integers
    (at most the code width). Each query's ``k``-th smallest distance ``t``
    (or one more) is found by counting the rows within ``t = min, min + 1,
    ...`` (:func:`_thresholds`); the few rows within ``t`` are then gathered
    and ranked by distance, then index (:func:`_nearest_in_mask`). Every pass
    is a vectorised comparison or reduction over the chunk, and no index
    array as large as the distance matrix is ever written.

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
    q_words, d_words = _narrow(to_words(query)), _narrow(to_words(data))
    n_data, n_words = d_words.shape
    n_queries = len(q_words)
    k = n_neighbors + 1 if exclude_self else n_neighbors
    # Rows padded to whole 8-byte words, padding at a distance no code has.
    width = -(-n_data // 8) * 8
    step = max(1, min(n_queries, 256, _CHUNK_ELEMENTS // 4 // max(1, width * n_words)))
    dist = np.empty((step, width), dtype=np.uint8 if n_words * 64 < 256 else np.uint16)
    dist[:, n_data:] = np.iinfo(dist.dtype).max
    mask = np.empty((step, width), dtype=bool)
    dist_out = np.empty((n_queries, k), dtype=np.int64)
    ind_out = np.empty((n_queries, k), dtype=np.intp)
    for start in range(0, n_queries, step):
        chunk = q_words[start : start + step]
        d, m = dist[: len(chunk)], mask[: len(chunk)]
        _distances_into(chunk, d_words, d[:, :n_data])
        dist_out[start : start + step], ind_out[start : start + step] = _nearest(d, m, k, n_data)
    if not exclude_self:
        return dist_out, ind_out
    keep = ind_out != np.arange(n_queries)[:, None]
    keep[np.all(keep, axis=1), 0] = False
    shape = (n_queries, n_neighbors)
    return dist_out[keep].reshape(shape), ind_out[keep].reshape(shape)


def _distances_into(query_words, data_words, out):
    """:func:`hamming_distances` written into ``out``, without temporaries for one-word codes."""
    if data_words.shape[1] == 1 and _HAS_BITWISE_COUNT:
        xor = np.bitwise_xor(query_words, data_words[:, 0])
        np.bitwise_count(xor, out=out)
    else:
        out[...] = hamming_distances(query_words, data_words)


def _narrow(words):
    """One-word rows of codes up to 32 bits as uint32: half the bytes to XOR."""
    if words.shape[1] == 1 and not np.any(words >> np.uint64(32)):
        return words.astype(np.uint32)
    return words


def _nearest(dist, mask, k, n_data):
    """The ``k`` smallest distances of each row and their columns, ties by column.

    A few neighbours (``k`` up to a sixteenth of the row): count to each
    row's ``k``-th distance and rank only the entries within it. Many: a
    stable argsort of whole rows (numpy's radix sort for 8- and 16-bit
    integers) is cheaper than gathering most of the row.
    """
    if 16 * k > dist.shape[1]:
        ind = np.argsort(dist[:, :n_data], axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dist, ind, axis=1).astype(np.int64), ind
    _thresholds(dist, k, mask)
    return _nearest_in_mask(dist, mask, k)


def _thresholds(dist, k, mask):
    """A value per row, the row's ``k``-th smallest or one more; leaves ``mask = dist <= it``.

    Starts at the row's minimum and raises the rows still holding fewer
    than ``k`` values by one per pass, by two while they hold fewer than
    ``k / 4`` (overshooting by at most one, which only adds ties to
    rank). The number of passes is about the largest gap between a row's
    minimum and its ``k``-th value, at most the code width.
    """
    threshold = dist.min(axis=1)
    while True:
        np.less_equal(dist, threshold[:, None], out=mask)
        counts = _row_counts(mask)
        short = counts < k
        if not short.any():
            return threshold
        threshold += short
        threshold += 4 * counts < k


def _row_counts(mask):
    """Number of True values in each row of a mask of whole 8-byte words.

    The bytes of a mask are 0 or 1, so adding its rows' 64-bit words adds
    eight byte lanes at once, and up to 255 words never carry from a lane
    into the next.
    """
    words = mask.view(np.uint64)
    lanes = np.add.reduceat(words, np.arange(0, words.shape[1], 255), axis=1)
    return lanes.view(np.uint8).sum(axis=1, dtype=np.int64)


def _nearest_in_mask(dist, mask, k):
    """The ``k`` masked entries of each row with the smallest distance, then column.

    The mask is sparse (each row holds ``k`` values plus ties): its nonzero
    8-byte words are found first, then their nonzero bytes.
    """
    n_rows, width = mask.shape
    words = mask.view(np.uint64).ravel()
    hit_words = np.flatnonzero(words != 0)
    hit_bytes = np.flatnonzero(words[hit_words].view(bool))
    flat = hit_words[hit_bytes >> 3] * 8 + (hit_bytes & 7)
    rows, cols = np.divmod(flat, width)
    d = dist.ravel()[flat]
    # Entries come row by row, columns ascending: a stable sort on
    # (row, distance) ranks equal distances by column. The key fits 16 bits
    # for a chunk of up to 256 rows of 8-bit distances (a radix sort).
    key = rows * (int(np.iinfo(d.dtype).max) + 1) + d
    if n_rows * 256 <= 2**16 and d.dtype == np.uint8:
        key = key.astype(np.uint16)
    order = np.argsort(key, kind="stable")
    first = np.searchsorted(rows, np.arange(n_rows))
    take = order[first[:, None] + np.arange(k)]
    return d[take].astype(np.int64), cols[take]
