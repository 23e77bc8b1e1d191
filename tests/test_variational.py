"""VariationalAE: ELBO, KL, sampling, scores and beta selection, with numbers."""

import copy
import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from torch import nn

from skae import VariationalAE
from skae._losses import gaussian_kl

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def binary_digits(digits):
    X, y = digits
    X = (X > 7).astype(np.float64)
    return train_test_split(X, y, random_state=0)


@pytest.fixture(scope="module")
def fitted_binary(binary_digits):
    """A converged standard VAE (beta = 1) on binarised digits; alpha=0 so the
    aggregate-posterior moments are a stationarity condition (see below)."""
    X_train = binary_digits[0]
    return VariationalAE(
        n_components=8,
        hidden_layer_sizes=(64,),
        loss="log_loss",
        alpha=0.0,
        learning_rate_init=3e-3,
        max_iter=150,
        random_state=0,
        device="cpu",
    ).fit(X_train)


def _numpy_forward(seq, a):
    """Run an ``nn.Sequential`` of Linear/ReLU layers in numpy (float64)."""
    for layer in seq:
        if isinstance(layer, nn.Linear):
            a = a @ layer.weight.detach().double().numpy().T
            a = a + layer.bias.detach().double().numpy()
        else:
            assert isinstance(layer, nn.ReLU)
            a = np.maximum(a, 0.0)
    return a


def _linear(layer, a):
    return _numpy_forward(nn.Sequential(layer), a)


def _documented_draws(n_components):
    """The score's fixed draws, built as the Notes of VariationalAE say."""
    n_draws = max(16, 2 * n_components)
    eps = torch.randn(
        (n_draws, n_components),
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    ).numpy()
    eps = eps - eps.mean(0)
    chol = np.linalg.cholesky(eps.T @ eps / n_draws)
    eps = np.linalg.solve(chol, eps.T).T
    np.testing.assert_allclose(eps.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(eps.T @ eps / n_draws, np.eye(n_components), atol=1e-12)
    return eps


@pytest.mark.parametrize("loss", ["squared_error", "log_loss"])
def test_score_samples_by_hand(digits, loss):
    """score_samples = (1/L) sum_l log p(x | mu + sigma eps_l) - KL, by hand
    in numpy and in the units of X, with the documented fixed draws."""
    X, _ = digits
    X = X[:60] if loss == "squared_error" else (X[:60] > 7).astype(np.float64)
    vae = VariationalAE(
        n_components=2,
        hidden_layer_sizes=(5,),
        loss=loss,
        max_iter=5,
        random_state=0,
        device="cpu",
    ).fit(X)
    x = X[:3]
    m = vae.module_
    h = _numpy_forward(m.encoder, (x - vae.mean_) / vae.scale_)
    mu, log_var = _linear(m.code, h), _linear(m.log_var, h)
    eps = _documented_draws(2)
    log_lik = np.zeros(len(x))
    for e in eps:
        out = _numpy_forward(m.decoder, mu + np.exp(0.5 * log_var) * e)
        if loss == "log_loss":
            p = 1.0 / (1.0 + np.exp(-out))
            log_lik += (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1)
        else:
            x_hat = out * vae.scale_ + vae.mean_  # decoder mean, units of X
            var = vae.noise_variance_
            log_lik += (
                -0.5 * (x - x_hat) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
            ).sum(1)
    kl = 0.5 * (mu**2 + np.exp(log_var) - log_var - 1).sum(1)
    expected = log_lik / len(eps) - kl
    np.testing.assert_allclose(vae.score_samples(x), expected, rtol=1e-10)
    assert vae.score(x) == pytest.approx(expected.mean(), rel=1e-10)
    # transform is the posterior mean; repeated calls agree exactly.
    np.testing.assert_allclose(vae.transform(x), mu, rtol=1e-10)
    np.testing.assert_array_equal(vae.score_samples(x), vae.score_samples(x))


def test_score_samples_matches_full_monte_carlo_elbo(fitted_binary, binary_digits):
    """The analytic-KL, fixed-draw score against a plain Monte Carlo ELBO,
    E_q[log p(x|z) + log p(z) - log q(z|x)] with 20,000 fresh draws each."""
    x = torch.tensor(binary_digits[1][:5])
    m = copy.deepcopy(fitted_binary.module_).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mu, log_var = m.posterior(x)
        std = torch.exp(0.5 * log_var)
        eps = torch.randn((20000, *mu.shape), generator=gen, dtype=torch.float64)
        z = mu + std * eps
        logits = m.decoder(z)
        log_lik = -nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none"
        ).sum(-1)
        log_prior = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
        log_q = -0.5 * (eps**2 + log_var + math.log(2 * math.pi)).sum(-1)
        mc_elbo = (log_lik + log_prior - log_q).mean(0).numpy()
        # The closed-form KL against its own Monte Carlo estimate.
        mc_kl = (log_q - log_prior).mean(0).numpy()
    # Measured: largest KL gap 0.023 nats on KLs of 4.5 to 7.4 nats.
    np.testing.assert_allclose(gaussian_kl(mu, log_var).numpy(), mc_kl, atol=0.1)
    # Measured: largest gap 0.12 nats on ELBOs of -12 to -27 nats (the fixed
    # draws' own Monte Carlo error; the reference's is 0.01); margin 0.5 nat.
    np.testing.assert_allclose(
        fitted_binary.score_samples(x.numpy()), mc_elbo, atol=0.5
    )


@pytest.mark.parametrize("loss", ["squared_error", "log_loss"])
def test_training_objective_is_negative_elbo(digits, loss):
    """The batch objective with the score's fixed draws is minus the score
    (plus (beta - 1) KL), and its mean over fresh training draws matches."""
    X, _ = digits
    X = X[:300] if loss == "squared_error" else (X[:300] > 7).astype(np.float64)
    beta = 3.0
    vae = VariationalAE(
        n_components=4,
        hidden_layer_sizes=(16,),
        loss=loss,
        alpha=0.0,
        beta=beta,
        max_iter=20,
        random_state=0,
        device="cpu",
    ).fit(X)
    net = vae._net
    m = net.module_
    x = m.normalize(torch.tensor(X, dtype=torch.float32))
    eps = torch.tensor(_documented_draws(4), dtype=torch.float32)

    def objective(output):
        return float(vae._loss(net, x, x, None, output))

    with torch.no_grad():
        mu, log_var = m.posterior(x)
        kl = float(gaussian_kl(mu, log_var).mean())
        std = torch.exp(0.5 * log_var)
        fixed = [objective((m.decoder(mu + std * e), mu, log_var)) for e in eps]
    score = vae.score(X.astype(np.float32))
    assert -np.mean(fixed) + (beta - 1) * kl == pytest.approx(score, rel=1e-5)

    # Fresh reparameterised draws from the training forward (no_grad: the
    # noise variance is left as fitted).
    noise_var = float(m.noise_var)
    m.train()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        draws = [objective(m(x)) for _ in range(200)]
    m.eval()
    assert float(m.noise_var) == noise_var
    # Measured gap 0.18 nats (log_loss) / 0.08 nats (squared_error) on
    # objectives of 41 / 188 nats, standard error of the fresh mean 0.005 /
    # 0.01; margin 0.6 nats.
    assert np.mean(draws) - (beta - 1) * kl == pytest.approx(-score, abs=0.6)


def test_heldout_elbo_improves_and_grid_search_selects_beta_one(binary_digits):
    X_train, X_test = binary_digits[:2]
    base = dict(
        n_components=4,
        hidden_layer_sizes=(64,),
        loss="log_loss",
        random_state=0,
        device="cpu",
    )
    # Held-out ELBO after 1, 5 and 25 epochs. Measured: -43.8, -36.9, -25.5.
    vae = VariationalAE(**base)
    scores = []
    for epoch in range(1, 26):
        vae.partial_fit(X_train)
        if epoch in (1, 5, 25):
            scores.append(vae.score(X_test))
    assert scores[1] > scores[0] + 3 and scores[2] > scores[1] + 5

    search = GridSearchCV(
        VariationalAE(max_iter=30, **base), {"beta": [0.05, 1.0, 20.0]}, cv=3
    ).fit(X_train)
    mean_scores = dict(
        zip(search.cv_results_["param_beta"], search.cv_results_["mean_test_score"])
    )
    assert search.best_params_ == {"beta": 1.0}
    # Measured mean CV ELBO: beta=0.05 -40.9, beta=1 -26.0, beta=20 -27.1.
    assert mean_scores[1.0] > mean_scores[0.05] + 5
    assert mean_scores[1.0] > mean_scores[20.0] + 0.5
    test_scores = {
        b: VariationalAE(max_iter=30, beta=b, **base).fit(X_train).score(X_test)
        for b in (0.05, 20.0)
    }
    # Measured on the test split: -24.8 against -38.4 and -26.2.
    assert search.score(X_test) > max(test_scores.values()) + 0.5


def test_aggregate_posterior_matches_prior(fitted_binary, binary_digits):
    """With beta = 1 and no weight penalty, rescaling or shifting a code unit
    (and undoing it in the decoder's first layer) leaves the reconstruction
    unchanged, so a stationary point has, per unit, mean(mu) = 0 and
    Var(mu) + E[sigma^2] = 1: the aggregate posterior's moments match the
    prior's."""
    X_train = binary_digits[0]
    m = fitted_binary.module_
    with torch.no_grad():
        mu, log_var = m.posterior(
            m.normalize(torch.tensor(X_train, dtype=torch.float32))
        )
    mu, var = mu.double().numpy(), log_var.exp().double().numpy()
    np.testing.assert_allclose(mu, fitted_binary.transform(X_train), atol=1e-5)
    # Measured: largest |mean| 0.082, total variances within [0.987, 1.098].
    assert np.abs(mu.mean(0)).max() < 0.15
    np.testing.assert_allclose(mu.var(0) + var.mean(0), 1.0, atol=0.2)


def test_sample(fitted_binary, binary_digits):
    X_train = binary_digits[0]
    samples = fitted_binary.sample(2000, random_state=0)
    assert samples.shape == (2000, 64) and samples.dtype == np.float64
    assert samples.min() >= 0 and samples.max() <= 1
    # Decoded prior draws reproduce the pixel marginals of the training data.
    # Measured: largest gap 0.032, correlation 0.999.
    gap = np.abs(samples.mean(0) - X_train.mean(0))
    assert gap.max() < 0.12
    assert np.corrcoef(samples.mean(0), X_train.mean(0))[0, 1] > 0.98
    np.testing.assert_array_equal(samples, fitted_binary.sample(2000, random_state=0))
    assert not np.allclose(samples[:5], fitted_binary.sample(5, random_state=1))
    assert fitted_binary.sample().shape == (1, 64)
    with pytest.raises(ValueError, match="n_samples"):
        fitted_binary.sample(0)


def test_sample_gaussian_in_data_range(digits):
    X, _ = digits
    vae = VariationalAE(
        n_components=4,
        hidden_layer_sizes=(64,),
        max_iter=50,
        random_state=0,
        device="cpu",
    ).fit(X)
    samples = vae.sample(1000, random_state=0)
    assert samples.shape == (1000, 64)
    # Gaussian decoder means are not clipped; measured 99.3% of values within
    # [-1, 17] for digits in [0, 16], pixel-mean gap at most 0.75.
    inside = (samples >= X.min() - 1) & (samples <= X.max() + 1)
    assert inside.mean() > 0.98
    assert np.abs(samples.mean(0) - X.mean(0)).max() < 1.5
    assert vae.noise_variance_.shape == (64,)


def test_linear_vae_is_bounded_by_probabilistic_pca(digits):
    """A linear VAE is probabilistic PCA fitted by its ELBO: its training ELBO
    cannot exceed PPCA's maximised log-likelihood but comes close, with a
    similar noise variance. A nonlinear VAE does better on held-out data."""
    X_train, X_test = train_test_split(digits[0], random_state=0)
    pca = PCA(n_components=2).fit(X_train)
    linear = VariationalAE(
        n_components=2,
        hidden_layer_sizes=(),
        activation="identity",
        alpha=0.0,
        learning_rate_init=1e-2,
        max_iter=100,
        random_state=0,
        device="cpu",
    ).fit(X_train)
    elbo, ppca = linear.score(X_train), pca.score(X_train)
    # With a linear decoder log p(x|z) is quadratic in z, so the
    # moment-matched draws make the score the exact ELBO: a strict bound.
    # Measured: ELBO -177.26 against PPCA -177.18 nats; noise 13.80 vs 13.74.
    assert ppca - 0.5 < elbo <= ppca
    assert linear.noise_variance_[0] == pytest.approx(pca.noise_variance_, rel=0.05)
    nonlinear = VariationalAE(
        n_components=2,
        hidden_layer_sizes=(128,),
        max_iter=100,
        random_state=0,
        device="cpu",
    ).fit(X_train)
    # Measured: -172.2 against -178.3 nats per held-out image.
    assert nonlinear.score(X_test) > pca.score(X_test) + 3


def test_score_samples_ranks_outliers(fitted_binary, binary_digits):
    X_test = binary_digits[1]
    rng = np.random.RandomState(0)
    noise = (rng.uniform(size=(100, 64)) < X_test.mean()).astype(np.float64)
    scores = fitted_binary.score_samples(np.vstack([X_test, noise]))
    labels = np.r_[np.zeros(len(X_test)), np.ones(len(noise))]
    # Measured AUC 1.000: the best noise image scores -58 nats, the worst
    # digit -35.
    assert roc_auc_score(labels, -scores) > 0.99


def test_log_loss_has_no_noise_variance(fitted_binary):
    assert fitted_binary.noise_variance_ is None


def test_beta_validation(binary_digits):
    with pytest.raises(ValueError, match="beta"):
        VariationalAE(beta=-1.0, device="cpu").fit(binary_digits[0])
