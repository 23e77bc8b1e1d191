"""Held-out negative ELBO of VariationalAE on binarised MNIST test images.

The convention of ``benchmarks/_data.py``: the MNIST test set's first 8,000
images train, the last 2,000 test, pixels divided by 255 and binarised at
0.5. Each model is a Bernoulli-decoder VAE (``loss='log_loss'``) with one
hidden layer of 500 ReLU units (Kingma & Welling, 2014, used 500 units and
batches of 100), trained with Adam and early stopping on the held-out ELBO of
10% of the training images (best weights restored). The table reports the
negative ELBO in nats per image (an upper bound on ``-log p(x)``, lower is
better) as :meth:`skae.VariationalAE.score` computes it, split into its
reconstruction and KL parts, next to the independent-pixel Bernoulli model
(no latent variable) as a floor to beat. Published VAEs reach about 90 nats
of negative log-likelihood with the full 60,000 training images.

    python benchmarks/bench_vae.py            # full table (4-6 min on 1 thread)
    python benchmarks/bench_vae.py --quick    # smoke run, tiny sizes
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _data import mnist_split
from sklearn.exceptions import ConvergenceWarning

from skae import VariationalAE
from skae._losses import gaussian_kl


def independent_pixels_nll(X_train, X_test):
    """Negative log-likelihood per image of a product of Bernoullis.

    Pixel probabilities are the training frequencies with add-one smoothing
    (so that a pixel never on in training has a finite cost in test).
    """
    p = (X_train.sum(0) + 1.0) / (len(X_train) + 2.0)
    log_lik = X_test @ np.log(p) + (1.0 - X_test) @ np.log1p(-p)
    return float(-log_lik.mean())


def kl_per_image(vae, X):
    """Mean KL(q(z|x) || N(0, I)) in nats, the KL part of the negative ELBO."""
    m = vae.module_
    with torch.no_grad():
        mean, log_var = m.posterior(m.normalize(torch.tensor(X, dtype=torch.float32)))
    return float(gaussian_kl(mean, log_var).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", default=None, help="folder of the idx files")
    parser.add_argument("--latent", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--max-iter", type=int, default=100, help="epochs at most")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_train, X_test, _, _ = mnist_split(args.mnist_dir)
    X_train = (X_train > 0.5).astype(np.float32)
    X_test = (X_test > 0.5).astype(np.float32)
    hidden, max_iter = (500,), args.max_iter
    if args.quick:
        X_train, X_test, hidden, max_iter = X_train[:500], X_test[:200], (32,), 3

    rows = [
        (
            "independent pixels",
            "-",
            "-",
            "-",
            "-",
            "-",
            independent_pixels_nll(X_train, X_test),
            "-",
            "-",
        )
    ]
    for k in args.latent:
        vae = VariationalAE(
            n_components=k,
            hidden_layer_sizes=hidden,
            loss="log_loss",
            batch_size=100,
            max_iter=max_iter,
            early_stopping=True,
            random_state=args.seed,
            device="cpu",
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            vae.fit(X_train)
        seconds = time.perf_counter() - start
        test_nelbo = -vae.score(X_test)
        test_kl = kl_per_image(vae, X_test)
        rows.append(
            (
                f"VAE 784-{'-'.join(map(str, hidden))}-{k}",
                k,
                vae.n_iter_,
                int(np.argmax(vae.validation_scores_)) + 1,
                f"{seconds:.0f}",
                f"{-vae.score(X_train):.2f}",
                test_nelbo,
                f"{test_nelbo - test_kl:.2f}",
                f"{test_kl:.2f}",
            )
        )

    header = (
        "model",
        "latent",
        "epochs",
        "best epoch",
        "fit s",
        "train -ELBO",
        "test -ELBO",
        "test recon",
        "test KL",
    )
    print(
        f"Binarised MNIST: {len(X_train)} train / {len(X_test)} test images, "
        f"nats per image (lower is better), torch threads={args.threads}"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{c:.2f}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
