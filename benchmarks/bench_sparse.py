"""Sparse input: a Poisson autoencoder on a bag-of-words CSR matrix.

The data: 40,000 documents over a 25,000-word vocabulary, 35 word draws
per document from a Zipf law (~30 distinct words), counts 1 + Poisson(0.5)
(~1.2 million non-zeros; dense float32 would be 3.7 GiB). The script fits
``AutoencoderTransformer(loss='poisson')`` on the CSR matrix and reports the
process's peak RSS after that fit (target: under 1.5 GiB), then times
epochs of skae against a hand-written loop that densifies the same batches
of the same CSR matrix itself (same module class, Adam, batch size,
Poisson loss), in one process, interleaved, medians.

    python benchmarks/bench_sparse.py            # the full size
    python benchmarks/bench_sparse.py --quick    # smoke run, tiny sizes
"""

import argparse
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from skae import AutoencoderTransformer
from skae._modules import Autoencoder
from skae._poisson import poisson_nll


def bag_of_words(n_docs, n_words, words_per_doc=35, seed=0):
    rng = np.random.RandomState(seed)
    lengths = rng.poisson(words_per_doc, n_docs)
    p = 1.0 / np.arange(1, n_words + 1)
    p /= p.sum()
    rows = np.repeat(np.arange(n_docs), lengths)
    cols = rng.choice(n_words, size=len(rows), p=p)
    counts = 1 + rng.poisson(0.5, len(rows))
    X = sp.coo_matrix((counts.astype(np.float32), (rows, cols)), shape=(n_docs, n_words))
    return X.tocsr()


def peak_rss_gib():
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024**3 if sys.platform == "darwin" else 1024**2)


def skae_fit(X, k, hidden, batch_size, epochs, seed):
    ae = AutoencoderTransformer(
        k, hidden_layer_sizes=hidden, loss="poisson", batch_size=batch_size, max_iter=epochs,
        alpha=0.0, tol=0.0, n_iter_no_change=epochs, random_state=seed, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    return ae


def hand_loop(X, k, hidden, batch_size, epochs, seed):
    """Densify each shuffled batch of the CSR matrix by hand, train on it."""
    torch.manual_seed(seed)
    model = Autoencoder(X.shape[1], k, hidden_layer_sizes=hidden, output_activation="exp")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = X.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n).numpy()
        for start in range(0, n, batch_size):
            xb = torch.from_numpy(X[perm[start : start + batch_size]].toarray())
            log_rate, _ = model(xb)
            loss = poisson_nll(log_rate, xb).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=40_000)
    parser.add_argument("--words", type=int, default=25_000)
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="*", default=[100])
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.docs, args.words, args.repeats = 2000, 1000, 1
    X = bag_of_words(args.docs, args.words)
    dense_gib = X.shape[0] * X.shape[1] * 4 / 1024**3
    print(
        f"{X.shape[0]} x {X.shape[1]} CSR, {X.nnz} non-zeros "
        f"(dense float32: {dense_gib:.2f} GiB); {torch.get_num_threads()} thread(s)"
    )
    hidden = tuple(args.hidden)
    start = time.perf_counter()
    ae = skae_fit(X, args.components, hidden, args.batch_size, 1, 0)
    print(
        f"skae fit, 1 epoch: {time.perf_counter() - start:.1f} s, peak RSS "
        f"{peak_rss_gib():.2f} GiB, mean log-likelihood {ae.score(X[:2000]):.1f}"
    )
    times = {"skae": [], "hand": []}
    for r in range(args.repeats):
        for name, fn in (("skae", skae_fit), ("hand", hand_loop)):
            start = time.perf_counter()
            fn(X, args.components, hidden, args.batch_size, 1, r)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name in ("hand", "skae"):
        print(f"{name:>5}: {med[name]:7.2f} s/epoch  {X.shape[0] / med[name]:8.0f} docs/s")
    print(f"ratio skae / hand: {med['skae'] / med['hand']:.3f} (medians of {args.repeats})")
    print(f"peak RSS of the process: {peak_rss_gib():.2f} GiB")
    return med


if __name__ == "__main__":
    main()
