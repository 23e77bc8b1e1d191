"""loss='poisson': choose p(x|mu) = Poisson, minimise -log p(x|mu)."""

import numpy as np
import pytest
from scipy.stats import poisson

from skae import AutoencoderTransformer, StackedAE, VariationalAE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _counts(n=400, n_features=30, seed=0):
    """Counts from 3 topics: rates are mixtures of 3 rate profiles."""
    rng = np.random.RandomState(seed)
    profiles = rng.gamma(0.5, 4.0, size=(3, n_features))
    weights = rng.dirichlet(np.ones(3) * 0.3, size=n)
    return rng.poisson(weights @ profiles).astype(np.float64)


def test_score_samples_is_the_poisson_log_likelihood():
    X = _counts()
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(16,), loss="poisson", max_iter=20,
                                device="cpu", random_state=0).fit(X)
    assert ae.module_.input_mean.abs().max() == 0 and (ae.scale_ == 1).all()  # no centring
    rates = ae.inverse_transform(ae.transform(X))
    assert rates.min() > 0
    expected = poisson.logpmf(X, rates).sum(axis=1)
    np.testing.assert_allclose(ae.score_samples(X), expected, rtol=1e-4)
    # The loss curve is the mean negative log-likelihood (alpha aside).
    assert ae.loss_curve_[-1] == pytest.approx(-ae.score(X), rel=0.05)


def test_poisson_autoencoder_beats_the_independent_model():
    X = _counts(seed=1)
    X_train, X_test = X[:300], X[300:]
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(16,), loss="poisson", max_iter=100,
                                learning_rate_init=1e-2, device="cpu", random_state=0)
    ae.fit(X_train)
    baseline = poisson.logpmf(X_test, X_train.mean(axis=0) + 1e-9).sum(axis=1).mean()
    assert ae.score(X_test) > baseline + 5, (ae.score(X_test), baseline)


@pytest.mark.parametrize(
    "X_change, match",
    [(lambda X: X - 1, "negative value"), (lambda X: X + 0.5, "non-integer")],
)
def test_non_counts_are_refused(X_change, match):
    X = _counts(n=50)
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(2, loss="poisson", device="cpu").fit(X_change(X))
    ae = AutoencoderTransformer(2, loss="poisson", max_iter=2, device="cpu").fit(X)
    with pytest.raises(ValueError, match="scores counts"):
        ae.score_samples(X_change(X))


def test_settings_that_break_the_likelihood_are_refused():
    X = _counts(n=50)
    with pytest.raises(ValueError, match="normalize=.auto. or None"):
        AutoencoderTransformer(2, loss="poisson", normalize="global").fit(X)
    with pytest.raises(ValueError, match="output_activation=None"):
        AutoencoderTransformer(2, loss="poisson", output_activation="relu").fit(X)
    with pytest.raises(ValueError, match="output_activation"):
        AutoencoderTransformer(2, output_activation="exp").fit(X)


@pytest.mark.parametrize("cls", [VariationalAE, StackedAE])
def test_poisson_with_other_variants(cls):
    X = _counts()
    est = cls(3, hidden_layer_sizes=(16,), loss="poisson", max_iter=10, device="cpu",
              random_state=0).fit(X)
    scores = est.score_samples(X)
    assert np.isfinite(scores).all()
    # A log-probability of counts: never above 0.
    assert scores.max() < 0
    if cls is VariationalAE:
        assert est.noise_variance_ is None
        assert est.sample(2, random_state=0).min() > 0
