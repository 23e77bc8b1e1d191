"""Semantic hashing on MNIST: retrieval quality, search speed, radius lookups.

The split is the benchmarks' convention: the first 8,000 MNIST test images
are the database (and SemanticHashing's training set), the last 2,000 the
queries; pixels in [0, 1]; a retrieved image is relevant when it has the
query's label. Each method maps images to ``bits``-bit codes, fitted on the
database only:

* ``SemanticHashing``: skae's autoencoder with a binary code, trained with
  its neighbourhood term (``neighbor_weight``: the codes of each batch keep
  the batch's input-space k-NN graph); with ``--plain``, also the
  reconstruction-only model of the first round (``neighbor_weight=0``);
* ``ITQ``: PCA to ``bits`` dimensions, then the rotation that minimises the
  quantisation error, 50 alternating iterations (Gong & Lazebnik 2011);
* ``PCAH``: the signs of the centred PCA projections;
* ``LSH``: the signs of random Gaussian projections of the centred data;
* ``PCA float``: the real-valued PCA projections, ranked by Euclidean
  distance (a reference, not a hash).

The database is ranked by Hamming distance for each query, ties broken at
random (a seeded random permutation), and we report the precision of the
100 nearest (P@100) and the mean average precision over the whole ranking
(mAP). Then:

* ``kneighbors`` (skae's packed-bit search) against
  ``NearestNeighbors(metric="hamming", algorithm="brute")`` on the same bits,
  2,000 queries over 8,000 codes, medians of interleaved repeats;
* ``radius_neighbors`` at radius 2 (hash-table lookups of the Hamming ball)
  on 10,000 and 1,000,000 synthetic random 32-bit codes: time per query,
  against a scan of all the codes for contrast.

    python benchmarks/bench_hashing.py                   # all tables
    python benchmarks/bench_hashing.py --plain           # + the reconstruction-only rows
    python benchmarks/bench_hashing.py --sweep           # binarisation choice, 32 bits, plain
    python benchmarks/bench_hashing.py --sweep neighbors # the neighbourhood term's settings
    python benchmarks/bench_hashing.py --quick           # smoke run, < 30 s
"""

import argparse
import ast
import time
import warnings

import numpy as np
import torch
from _data import mnist_split
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from skae import SemanticHashing, _hamming, _hamming_table

# ----------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------


def lsh(X_db, X_q, bits, seed=0):
    rng = np.random.default_rng(seed)
    mean = X_db.mean(axis=0)
    W = rng.standard_normal((X_db.shape[1], bits))
    return ((X_db - mean) @ W > 0).astype(np.uint8), ((X_q - mean) @ W > 0).astype(np.uint8)


def pcah(X_db, X_q, bits):
    pca = PCA(bits, random_state=0).fit(X_db)
    return (pca.transform(X_db) > 0).astype(np.uint8), (pca.transform(X_q) > 0).astype(np.uint8)


def itq(X_db, X_q, bits, n_iter=50, seed=0):
    """Iterative quantisation: B = sign(V R) with R minimising ||B - V R||_F."""
    pca = PCA(bits, random_state=0).fit(X_db)
    V = pca.transform(X_db)
    rng = np.random.default_rng(seed)
    R, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    for _ in range(n_iter):
        B = np.where(V @ R >= 0, 1.0, -1.0)
        # argmin_R ||B - V R||_F over orthogonal R: orthogonal Procrustes.
        U, _, Wt = np.linalg.svd(V.T @ B)
        R = U @ Wt
    return (V @ R > 0).astype(np.uint8), (pca.transform(X_q) @ R > 0).astype(np.uint8)


def semantic_hashing(X_db, X_q, bits, **params):
    est = SemanticHashing(bits, **params).fit(X_db)
    return est.transform(X_db), est.transform(X_q), est


# ----------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------


def ranking_metrics(dist, y_db, y_q, k=100, seed=0):
    """P@k and mAP of rankings by ``dist`` (n_q, n_db), ties broken at random."""
    rng = np.random.default_rng(seed)
    p_at_k, ap = [], []
    step = 250
    for start in range(0, len(y_q), step):
        d = dist[start : start + step].astype(np.float64)
        # A random permutation of each row breaks ties: order by (d, u).
        u = rng.random(d.shape)
        order = np.lexsort((u, d), axis=1)
        rel = y_db[order] == y_q[start : start + step, None]
        p_at_k.append(rel[:, :k].mean(axis=1))
        hits = np.cumsum(rel, axis=1)
        ranks = np.arange(1, rel.shape[1] + 1)
        ap.append((rel * hits / ranks).sum(axis=1) / np.maximum(rel.sum(axis=1), 1))
    return float(np.concatenate(p_at_k).mean()), float(np.concatenate(ap).mean())


def hamming_matrix(C_q, C_db):
    q = _hamming.to_words(_hamming.pack_codes(C_q))
    db = _hamming.to_words(_hamming.pack_codes(C_db))
    step = 500
    return np.concatenate(
        [_hamming.hamming_distances(q[s : s + step], db) for s in range(0, len(q), step)]
    )


def euclidean_matrix(Z_q, Z_db):
    sq = (Z_q**2).sum(1)[:, None] + (Z_db**2).sum(1)[None, :] - 2 * Z_q @ Z_db.T
    return np.maximum(sq, 0)


def balance(C):
    m = C.mean(axis=0)
    return float(m.min()), float(m.max())


# ----------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------


def quality_table(data, bits_list, sh_params, plain_params=None):
    X_db, X_q, y_db, y_q = data
    print(f"\n## Retrieval, {len(X_db)} database / {len(X_q)} queries, relevance = same label")
    print("| bits | method | P@100 | mAP | bit means (min-max) | fit s |")
    print("|---|---|---|---|---|---|")
    codes = {}
    for bits in bits_list:
        rows = []
        t = time.perf_counter()
        C_db, C_q, est = semantic_hashing(X_db, X_q, bits, **sh_params)
        rows.append(("SemanticHashing", C_db, C_q, time.perf_counter() - t))
        codes[bits] = (C_db, C_q)
        if plain_params is not None:
            t = time.perf_counter()
            C_db_p, C_q_p, _ = semantic_hashing(X_db, X_q, bits, **plain_params)
            rows.append(("SemanticHashing, plain", C_db_p, C_q_p, time.perf_counter() - t))
        for name, fn in (("ITQ", itq), ("PCAH", pcah), ("LSH", lsh)):
            t = time.perf_counter()
            C_db_b, C_q_b = fn(X_db, X_q, bits)
            rows.append((name, C_db_b, C_q_b, time.perf_counter() - t))
        for name, C_db_m, C_q_m, fit_s in rows:
            p, m = ranking_metrics(hamming_matrix(C_q_m, C_db_m), y_db, y_q)
            lo, hi = balance(C_db_m)
            print(f"| {bits} | {name} | {p:.3f} | {m:.3f} | {lo:.2f}-{hi:.2f} | {fit_s:.1f} |")
        pca = PCA(bits, random_state=0).fit(X_db)
        p, m = ranking_metrics(
            euclidean_matrix(pca.transform(X_q), pca.transform(X_db)), y_db, y_q
        )
        print(f"| {bits} | PCA float (Euclidean) | {p:.3f} | {m:.3f} | - | - |")
    return codes


def neighbor_variants(quick):
    """Settings of the neighbourhood term, each changed alone from the recipe."""
    variants = {
        "recipe": {},
        "neighbor_weight=0 (reconstruction only)": dict(neighbor_weight=0.0),
        "neighbor_weight=100": dict(neighbor_weight=100.0),
        "neighbor_weight=3000": dict(neighbor_weight=3000.0),
        "batch_size=500": dict(batch_size=500),
        "batch_neighbors=20": dict(batch_neighbors=20),
        "neighbor_temperature=0.1": dict(neighbor_temperature=0.1),
        "neighbor_temperature=0.05": dict(neighbor_temperature=0.05),
        "neighbor_temperature=0.2": dict(neighbor_temperature=0.2),
        "60 epochs": dict(max_iter=60),
        "random_state=1": dict(random_state=1),
        "random_state=2": dict(random_state=2),
    }
    return dict(list(variants.items())[:2]) if quick else variants


def sweep_table(data, bits, base_params, variants):
    X_db, X_q, y_db, y_q = data
    print(f"\n## Variants, {bits} bits, SemanticHashing({base_params})")
    print("| variant | P@100 | mAP | bit means (min-max) | test recon. error | epochs | fit s |")
    print("|---|---|---|---|---|---|---|")
    for name, extra in variants.items():
        t = time.perf_counter()
        C_db, C_q, est = semantic_hashing(X_db, X_q, bits, **{**base_params, **extra})
        fit_s = time.perf_counter() - t
        p, m = ranking_metrics(hamming_matrix(C_q, C_db), y_db, y_q)
        lo, hi = balance(C_db)
        err = float(((est.inverse_transform(C_q) - X_q) ** 2).sum(1).mean())
        print(
            f"| {name} | {p:.3f} | {m:.3f} | {lo:.2f}-{hi:.2f} | {err:.2f} | "
            f"{est.n_iter_} | {fit_s:.0f} |",
            flush=True,
        )


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def speed_table(C_db, C_q, repeats, ks=(5, 100)):
    print(f"\n## kneighbors, {len(C_q)} queries over {len(C_db)} codes of {C_db.shape[1]} bits")
    print("| n_neighbors | skae packed-bit s | NearestNeighbors(hamming, brute) s | ratio |")
    print("|---|---|---|---|")
    P_db, P_q = _hamming.pack_codes(C_db), _hamming.pack_codes(C_q)
    B_db, B_q = C_db.astype(bool), C_q.astype(bool)
    for k in ks:
        nn = NearestNeighbors(n_neighbors=k, metric="hamming", algorithm="brute").fit(B_db)
        ours, theirs, ratios = [], [], []
        for _ in range(repeats):  # interleaved
            a = _median_time(lambda k=k: _hamming.kneighbors_packed(P_q, P_db, k), 1)
            b = _median_time(lambda nn=nn: nn.kneighbors(B_q), 1)
            ours.append(a), theirs.append(b), ratios.append(b / a)
        # Same neighbours up to ties: the distance lists agree.
        d_ours, _ = _hamming.kneighbors_packed(P_q, P_db, k)
        d_nn, _ = nn.kneighbors(B_q)
        assert np.array_equal(d_ours, np.rint(d_nn * C_db.shape[1]).astype(np.int64))
        print(
            f"| {k} | {np.median(ours):.4f} | {np.median(theirs):.4f} | "
            f"{np.median(ratios):.1f}x |"
        )


def _radius_case(n, n_queries, bits, radius, rng):
    """Random codes, their table, and queries: rows with `radius` bits flipped (hits)."""
    C = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    P = _hamming.pack_codes(C)
    Q = C[rng.integers(0, n, n_queries)].copy()
    flips = rng.integers(0, bits, (n_queries, radius))
    np.bitwise_xor.at(Q, (np.arange(n_queries)[:, None], flips), 1)
    t = time.perf_counter()
    table = _hamming_table.HammingTable(P, bits)
    build = time.perf_counter() - t
    return P, _hamming.pack_codes(Q), table, build


def radius_table(sizes, n_queries, repeats, bits=32, radius=2, scan_queries=100):
    print(f"\n## radius_neighbors, radius {radius}, {bits}-bit random codes, {n_queries} queries")
    print("| database rows | build s | index MB (codes + table) | us/query (lookup) "
          "| vs smallest | results/query | us/query (scan, for contrast) |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    cases = [_radius_case(n, n_queries, bits, radius, rng) for n in sizes]
    for _, PQ, table, _ in cases:
        table.radius_neighbors(PQ[:10], radius)  # warm
    # Sizes interleaved within each repeat, so that load changes hit all alike.
    lookups = [[] for _ in sizes]
    for _ in range(repeats):
        for times, (_, PQ, table, _) in zip(lookups, cases):
            times.append(_median_time(lambda t=table, q=PQ: t.radius_neighbors(q, radius), 1))
    per_query = [float(np.median(t)) / n_queries for t in lookups]
    for n, (P, PQ, table, build), lookup in zip(sizes, cases, per_query):
        n_results = len(table.radius_neighbors(PQ, radius)[0]) / n_queries
        words = _hamming.to_words(P)
        qw = _hamming.to_words(PQ[:scan_queries])

        def scan(qw=qw, words=words):
            for s in range(0, scan_queries, 10):
                np.nonzero(_hamming.hamming_distances(qw[s : s + 10], words) <= radius)

        scan_per_query = _median_time(scan, repeats) / scan_queries
        mb = (P.nbytes + table.nbytes) / 1e6
        print(
            f"| {n:,} | {build:.2f} | {mb:.1f} | {lookup * 1e6:.1f} | "
            f"{lookup / per_query[0]:.2f} | {n_results:.2f} | {scan_per_query * 1e6:.0f} |",
            flush=True,
        )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--sweep", nargs="?", const="binarization", choices=("binarization", "neighbors"),
        help="a table of variants at 32 bits: binarisation (plain model) or the "
        "neighbourhood term's settings",
    )
    parser.add_argument("--plain", action="store_true",
                        help="also the reconstruction-only model (first round's recipe)")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--hidden", default="(512, 256)")
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--noise-std", type=float, default=4.0)
    parser.add_argument("--binarization", default="noise")
    parser.add_argument("--balance-weight", type=float, default=1.0)
    parser.add_argument("--neighbor-weight", type=float, default=1000.0)
    parser.add_argument("--batch-neighbors", type=int, default=10)
    parser.add_argument("--neighbor-temperature", type=float, default=0.15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def main():
    args = parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    torch.set_num_threads(1) if args.quick else None

    X_db, X_q, y_db, y_q = mnist_split(args.mnist_dir)
    sh_params = dict(
        hidden_layer_sizes=ast.literal_eval(args.hidden),
        loss="log_loss",
        alpha=args.alpha,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        binarization=args.binarization,
        noise_std=args.noise_std,
        balance_weight=args.balance_weight,
        neighbor_weight=args.neighbor_weight,
        batch_neighbors=args.batch_neighbors,
        neighbor_temperature=args.neighbor_temperature,
        random_state=0,
        device=args.device,
    )
    # The first round's recipe: reconstruction only, 60 epochs, noise 8, batches of 200.
    plain_params = dict(
        sh_params, neighbor_weight=0.0, noise_std=8.0, max_iter=60, batch_size="auto"
    )
    bits_list = [int(b) for b in args.bits.split(",")]
    sizes = (10_000, 1_000_000)
    n_radius_queries = 2000
    if args.quick:
        X_db, y_db, X_q, y_q = X_db[:1000], y_db[:1000], X_q[:200], y_q[:200]
        sh_params.update(hidden_layer_sizes=(64,), max_iter=3, batch_size=200)
        plain_params.update(hidden_layer_sizes=(64,), max_iter=3)
        bits_list, sizes, n_radius_queries, args.repeats = [16], (10_000, 100_000), 200, 1
    data = (X_db, X_q, y_db, y_q)
    if args.sweep == "neighbors":
        variants = neighbor_variants(args.quick)
        sweep_table(data, 16 if args.quick else 32, sh_params, variants)
        return
    if args.sweep:
        variants = {
            "noise, std 2": dict(binarization="noise", noise_std=2.0),
            "noise, std 4": dict(binarization="noise", noise_std=4.0),
            "noise, std 8": dict(binarization="noise", noise_std=8.0),
            "straight-through": dict(binarization="straight_through"),
            "noise, std 4, balance_weight=0": dict(
                binarization="noise", noise_std=4.0, balance_weight=0.0
            ),
            "straight-through, balance_weight=0": dict(
                binarization="straight_through", balance_weight=0.0
            ),
        }
        if args.quick:
            variants = dict(list(variants.items())[:2])
        base = {
            k: v
            for k, v in plain_params.items()
            if k not in ("binarization", "noise_std", "balance_weight")
        }
        sweep_table(data, 16 if args.quick else 32, base, variants)
        return
    print(f"SemanticHashing parameters: {sh_params}")
    if args.plain:
        print(f"SemanticHashing, plain: {plain_params}")
    codes = quality_table(data, bits_list, sh_params, plain_params if args.plain else None)
    bits = 32 if 32 in codes else bits_list[0]
    speed_table(*codes[bits], args.repeats)
    radius_table(sizes, n_radius_queries, args.repeats)


if __name__ == "__main__":
    main()
