"""Conv autoencoder fit throughput: skae against a hand-written PyTorch loop.

Both sides train the same convolutional stack (``skae._custom_modules.
conv_stack`` wrapped in ``ModularAutoencoder``: 3x3 stride-2 convolutions
28 -> 14 -> 7 with ``--channels`` widths, a linear 30-D code, the mirror
transposed stack) with Adam, the same batch size and the Bernoulli
cross-entropy of ``loss='log_loss'``, on MNIST (pixels in [0, 1]), in one
process, interleaved; the script prints the median seconds per epoch of each,
images/s and the ratio skae / hand loop (target: at most 1.05).

    python benchmarks/bench_conv.py                # 8,000 images, 5 repeats
    python benchmarks/bench_conv.py --quick        # smoke run, tiny sizes

The quality figures (held-out reconstruction error within a time budget) are
in ``bench_quality.py``: ``--recipes conv-32-64-b64 --budget 600``.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from _data import mnist_split

from skae import AutoencoderTransformer
from skae._custom_modules import ModularAutoencoder, conv_stack

SHAPE = (1, 28, 28)


def hand_loop(X, channels, batch_size, epochs, seed):
    """The loop a PyTorch user writes: tensor data, shuffled sliced batches."""
    torch.manual_seed(seed)
    encoder, decoder, _ = conv_stack(SHAPE, 30, channels, 3, "relu")
    model = ModularAutoencoder(encoder, decoder, X.shape[1], 30)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_t = torch.tensor(X, dtype=torch.float32)
    n = len(X_t)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):
            xb = X_t[perm[start : start + batch_size]]
            logits, _ = model(xb)
            loss = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
    return model


def skae_fit(X, channels, batch_size, epochs, seed):
    ae = AutoencoderTransformer(
        30, encoder="conv", input_shape=SHAPE, conv_channels=channels, loss="log_loss",
        batch_size=batch_size, max_iter=epochs, alpha=0.0, tol=0.0,
        n_iter_no_change=epochs, random_state=seed, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    return ae


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="per timed fit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, _, _, _ = mnist_split()
    channels = tuple(args.channels)
    if args.quick:
        X, channels, args.repeats = X[:256], (4, 8), 2
    # Untimed warm-up of both sides (first-call costs: kernels, allocator).
    skae_fit(X[:256], channels, args.batch_size, 1, 0)
    hand_loop(X[:256], channels, args.batch_size, 1, 0)
    times = {"skae": [], "hand": []}
    for r in range(args.repeats):
        for name, fn in (("skae", skae_fit), ("hand", hand_loop)):
            start = time.perf_counter()
            fn(X, channels, args.batch_size, args.epochs, r)
            times[name].append((time.perf_counter() - start) / args.epochs)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"conv {channels}, {len(X)} images, batch {args.batch_size}, "
        f"{torch.get_num_threads()} thread(s), medians of {args.repeats} interleaved repeats"
    )
    for name in ("hand", "skae"):
        print(f"{name:>5}: {med[name]:7.3f} s/epoch  {len(X) / med[name]:8.0f} images/s")
    print(f"ratio skae / hand: {med['skae'] / med['hand']:.3f}")
    return med


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
