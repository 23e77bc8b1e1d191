"""Per-epoch training time: AutoencoderTransformer against a hand-written loop.

Both sides train the same module class (``skae._modules.Autoencoder``, same
initialisation), with the same optimiser settings and batch size, on the
MNIST test images (pixels in [0, 1]), in one process, interleaved, and the
script reports the median time per epoch of each and their ratio.

    python benchmarks/bench_training.py                 # full table (CPU)
    python benchmarks/bench_training.py --device cuda   # the same on a GPU
    python benchmarks/bench_training.py --device cuda --amp
                                    # also a hand loop under bf16 autocast
    python benchmarks/bench_training.py --quick         # smoke run, tiny sizes

On a GPU each side first runs one untimed warm-up fit (CUDA context, cuBLAS
handles, kernel selection), and the table adds throughput in samples/s.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from _data import load_mnist_test

from skae import AutoencoderTransformer
from skae._modules import Autoencoder
from skae._validation import fused_adam_supported

MODELS = {"784-64-2": ((64,), 2), "784-1000-500-250-30": ((1000, 500, 250), 30)}


def hand_loop(X, hidden, k, batch_size, epochs, seed, fused, device="cpu", amp=False):
    """The loop a PyTorch user writes: on-device data, sliced shuffled batches.

    ``amp``: forward pass under ``torch.autocast`` with bfloat16 (the loss in
    float32), the usual mixed-precision recipe on recent GPUs.
    """
    torch.manual_seed(seed)
    model = Autoencoder(X.shape[1], k, hidden_layer_sizes=hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    X_t = torch.tensor(X, dtype=torch.float32, device=device)
    n = len(X_t)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        total = torch.zeros((), device=device)
        for start in range(0, n, batch_size):
            xb = X_t[perm[start : start + batch_size]]
            with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=amp):
                decoded, _ = model(xb)
            loss = (decoded.float() - xb).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(xb)
        float(total / n)
    return model


def skae_fit(X, hidden, k, batch_size, epochs, seed, device="cpu"):
    ae = AutoencoderTransformer(
        k,
        hidden_layer_sizes=hidden,
        batch_size=batch_size,
        max_iter=epochs,
        alpha=0.0,
        normalize=None,
        tol=0.0,
        n_iter_no_change=epochs,
        random_state=seed,
        device=device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    return ae


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--n-samples", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    parser.add_argument("--amp", action="store_true", help="add a bf16-autocast hand loop")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--epochs", type=int, default=None, help="override per model")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gpu = args.device != "cpu"

    X, _ = load_mnist_test(args.mnist_dir)
    if args.n_samples > len(X):  # repeat the images to reach a larger size
        X = np.concatenate([X] * -(-args.n_samples // len(X)))
    X = X[: (256 if args.quick else args.n_samples)]
    fused = fused_adam_supported(args.device)
    where = torch.cuda.get_device_name(args.device) if gpu else f"{args.threads} thread(s)"
    print(
        f"torch {torch.__version__}, {where}, {len(X)} MNIST images, "
        f"Adam fused={fused} on both sides"
    )
    header = f"{'model':<22}{'batch':>6}{'epochs':>7}{'hand s/epoch':>14}{'skae s/epoch':>14}"
    header += f"{'ratio':>7}{'hand samples/s':>16}{'skae samples/s':>16}"
    if args.amp:
        header += f"{'bf16 hand s/ep':>16}{'bf16/fp32':>10}"
    print(header)
    rows = []
    for name in args.models:
        hidden, k = MODELS[name]
        for batch_size in args.batch_sizes:
            if args.epochs:
                epochs = args.epochs
            elif args.quick:
                epochs = 1
            elif gpu:
                epochs = 10
            else:
                epochs = 2 if name.startswith("784-1000") else 10
            hand_args = (X, hidden, k, batch_size, epochs)
            if gpu:  # warm-up, untimed
                hand_loop(*hand_args, 0, fused, args.device, amp=args.amp)
                skae_fit(*hand_args, 0, args.device)
            hand, ours, ratios, mixed = [], [], [], []
            for rep in range(args.repeats if not args.quick else 1):
                h = timed(hand_loop, *hand_args, rep, fused, args.device) / epochs
                s = timed(skae_fit, *hand_args, rep, args.device) / epochs
                if args.amp:
                    mixed.append(
                        timed(hand_loop, *hand_args, rep, fused, args.device, amp=True) / epochs
                    )
                hand.append(h)
                ours.append(s)
                ratios.append(s / h)
            row = [
                name,
                batch_size,
                epochs,
                statistics.median(hand),
                statistics.median(ours),
                statistics.median(ratios),
            ]
            line = f"{row[0]:<22}{row[1]:>6}{row[2]:>7}{row[3]:>14.4f}{row[4]:>14.4f}{row[5]:>7.3f}"
            line += f"{len(X) / row[3]:>16,.0f}{len(X) / row[4]:>16,.0f}"
            if args.amp:
                row.append(statistics.median(mixed))
                line += f"{row[6]:>16.4f}{row[6] / row[3]:>10.3f}"
            rows.append(tuple(row))
            print(line)
    return rows


if __name__ == "__main__":
    main()
