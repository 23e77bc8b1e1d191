"""Choosing n_components by cross-validation, on scikit-learn's PCA-vs-FA setup.

The data of scikit-learn's ``plot_pca_vs_fa_model_selection`` example, made
larger as in the issue: ``rank`` latent Gaussian factors mixed into
``n_features`` features by a random rotation, plus homoscedastic unit noise.
For each candidate ``n_components`` the table reports the mean 5-fold
cross-validated ``score`` (no ``scoring`` argument, as the example does):

* PCA: the probabilistic-PCA log-likelihood (picks the true rank);
* AutoencoderTransformer: minus the reconstruction error, which improves
  with every added code unit, so it picks the largest candidate;
* VariationalAE: the held-out ELBO, a lower bound on the log-likelihood,
  linear (``hidden_layer_sizes=()``, the VAE analogue of probabilistic PCA)
  with the default optimisation (``learning_rate_init=1e-3``, ``max_iter``
  200) and trained longer ("lin long": ``learning_rate_init=1e-2``,
  ``max_iter=1000``), and with the default hidden layer of 100 ReLU units.

The selected size is the candidate with the best mean score. No timing.

    python benchmarks/bench_rank_selection.py            # the table (minutes)
    python benchmarks/bench_rank_selection.py --quick    # smoke run, tiny sizes
"""

import argparse
import warnings

import numpy as np
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score

from skae import AutoencoderTransformer, VariationalAE


def make_data(n_samples, n_features, rank, sigma=1.0, seed=42):
    rng = np.random.RandomState(seed)
    U, _, _ = linalg.svd(rng.randn(n_features, n_features))
    X = rng.randn(n_samples, rank) @ U[:, :rank].T
    return X + sigma * rng.randn(n_samples, n_features)


def models(max_iter):
    common = {"max_iter": max_iter, "random_state": 0, "device": "cpu"}
    return {
        "PCA": lambda k: PCA(n_components=k, svd_solver="full"),
        "AE score": lambda k: AutoencoderTransformer(k, **common),
        "VAE linear": lambda k: VariationalAE(k, hidden_layer_sizes=(), **common),
        "VAE lin long": lambda k: VariationalAE(
            k, hidden_layer_sizes=(), **{**common, "max_iter": 5 * max_iter},
            learning_rate_init=1e-2,
        ),
        "VAE (100,)": lambda k: VariationalAE(k, **common),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        n_samples, n_features, rank, candidates, cv, max_iter = 60, 8, 2, [1, 2, 4], 2, 3
    else:
        n_samples, n_features, rank, cv, max_iter = 500, 50, 10, 5, 200
        candidates = list(range(5, n_features, 5))
    X = make_data(n_samples, n_features, rank)
    print(f"{n_samples} samples, {n_features} features, true rank {rank}, {cv}-fold CV")
    print(f"{'model':>12} | " + " ".join(f"{k:>8}" for k in candidates) + " | picks")
    for name, make in models(max_iter).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores = [np.mean(cross_val_score(make(k), X, cv=cv)) for k in candidates]
        best = candidates[int(np.argmax(scores))]
        print(f"{name:>12} | " + " ".join(f"{s:8.2f}" for s in scores) + f" | {best}")


if __name__ == "__main__":
    main()
