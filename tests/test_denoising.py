"""DenoisingAE: corruption rates, training-only noise, and real denoising gains."""

import pickle
from functools import partial
import warnings

import numpy as np
import pytest
import torch
from _helpers import fast_estimator
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, DenoisingAE

fast = partial(fast_estimator, hidden_layer_sizes=(16,))



def _state_equal(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------
# the corruption inside a fitted estimator, on digits
# ----------------------------------------------------------------------
def _corrupt_like_training(dae, X, seed=0):
    """Run the estimator's own ``_corrupt`` on X; return the result in X's units."""
    m = dae.module_
    x = m.normalize(torch.tensor(X, dtype=torch.float32))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x_c = dae._corrupt(x)
    return m.denormalize(x_c).double().numpy()


@pytest.mark.parametrize("normalize", ["global", "feature", None])
def test_masking_in_estimator_zeroes_pixels_in_user_units(digits, normalize):
    X = digits[0][:600]
    dae = fast(DenoisingAE, noise_level=0.3, normalize=normalize).fit(X)
    X_c = _corrupt_like_training(dae, X)
    zeroed = np.abs(X_c) < 1e-4  # a 0 in X's units, whatever normalize does
    # Every other entry comes back as it was (up to the float32 round trip).
    assert_allclose(X_c[~zeroed], X[~zeroed], atol=1e-4)
    # Fraction of nonzero pixels that became 0 (a zero pixel cannot change):
    # 0.30 of ~20,000 entries, binomial sd 0.003; allow 0.02.
    rate = zeroed[X != 0].mean()
    assert abs(rate - 0.3) < 0.02, rate


def test_salt_and_pepper_in_estimator_uses_training_feature_extremes(digits):
    X = digits[0][:600]
    dae = fast(DenoisingAE, noise="salt_and_pepper", noise_level=0.4).fit(X)
    X_c = _corrupt_like_training(dae, X)
    lo, hi = X.min(axis=0), X.max(axis=0)
    moved = np.abs(X_c - X) > 1e-4
    at_extreme = (np.abs(X_c - lo) < 1e-4) | (np.abs(X_c - hi) < 1e-4)
    assert np.all(at_extreme[moved])
    # Entries strictly inside their feature's range can only be moved by the
    # noise; 0.40 of them move (binomial sd 0.004 here; allow 0.03).
    inside = (X > lo) & (X < hi)
    rate = moved[inside].mean()
    assert abs(rate - 0.4) < 0.03, rate


def test_gaussian_in_estimator_has_requested_std_in_user_units(digits):
    X = digits[0][:600]
    dae = fast(DenoisingAE, noise="gaussian", noise_level=2.0, normalize="feature")
    dae.fit(X)
    eps = _corrupt_like_training(dae, X) - X
    # 38,400 draws: the sample std is within 1% of 2.0 with margin to spare.
    assert abs(eps.std() - 2.0) < 0.04, eps.std()


# ----------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------
def test_noise_level_zero_is_exactly_an_autoencoder(digits):
    X = digits[0][:300]
    for noise in ("masking", "gaussian", "salt_and_pepper"):
        dae = fast(DenoisingAE, noise=noise, noise_level=0.0).fit(X)
        ae = fast(AutoencoderTransformer).fit(X)
        assert _state_equal(dae, ae), noise
        assert dae.loss_curve_ == ae.loss_curve_


def test_same_random_state_gives_identical_models(digits):
    X = digits[0][:300]
    for noise in ("masking", "gaussian", "salt_and_pepper"):
        a = fast(DenoisingAE, noise=noise, noise_level=0.3).fit(X)
        b = fast(DenoisingAE, noise=noise, noise_level=0.3).fit(X)
        c = fast(DenoisingAE, noise=noise, noise_level=0.3, random_state=1).fit(X)
        assert _state_equal(a, b), noise
        assert not _state_equal(a, c), noise
        # The noise does change training: not the plain autoencoder's model.
        assert not _state_equal(a, fast(AutoencoderTransformer).fit(X)), noise


def test_no_corruption_at_inference(digits):
    X = digits[0][:300]
    dae = fast(DenoisingAE, noise_level=0.5).fit(X)
    state = torch.random.get_rng_state()
    Z1, Z2 = dae.transform(X), dae.transform(X)
    R1, R2 = dae.inverse_transform(Z1), dae.inverse_transform(Z1)
    S1, S2 = dae.score_samples(X), dae.score_samples(X)
    D1, D2 = dae.denoise(X), dae.denoise(X)
    assert_array_equal(Z1, Z2)
    assert_array_equal(R1, R2)
    assert_array_equal(S1, S2)
    assert_array_equal(D1, D2)
    # Inference draws no random numbers at all.
    assert torch.equal(torch.random.get_rng_state(), state)
    # And transform is the plain encoder applied to X as given.
    X32 = X.astype(np.float32)
    m = dae.module_
    with torch.no_grad():
        expected = m.encode(m.normalize(torch.from_numpy(X32))).numpy()
    assert_allclose(dae.transform(X32), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_denoise_is_inverse_transform_of_transform(digits, dtype):
    X = digits[0][:200].astype(dtype)
    dae = fast(DenoisingAE).fit(X)
    out = dae.denoise(X)
    assert out.dtype == dtype and out.shape == X.shape
    assert_allclose(out, dae.inverse_transform(dae.transform(X)), rtol=1e-6, atol=1e-5)


def test_references_kept_across_warm_start_and_partial_fit(digits):
    X = digits[0][:300]
    dae = fast(DenoisingAE, warm_start=True).fit(X)
    ref = {k: v.clone() for k, v in dae._noise_reference.items()}
    dae.fit(X * 0.5)  # warm start: normalisation and references stay
    dae.partial_fit(X + 3.0)
    for k in ref:
        assert torch.equal(dae._noise_reference[k], ref[k]), k
    # A fresh (non-warm) fit recomputes them from its own data.
    dae.set_params(warm_start=False).fit(X + 3.0)
    assert not torch.equal(dae._noise_reference["zero"], ref["zero"])


def test_partial_fit_from_scratch_sets_references(digits):
    X = digits[0][:300]
    dae = fast(DenoisingAE).partial_fit(X)
    m = dae.module_
    assert_allclose(m.denormalize(dae._noise_reference["zero"]).numpy(), 0.0, atol=1e-5)
    dae.partial_fit(X)
    assert dae.n_iter_ == 2


def test_pickle_round_trip(digits):
    X = digits[0][:200]
    dae = fast(DenoisingAE).fit(X)
    clone = pickle.loads(pickle.dumps(dae))
    assert_array_equal(clone.denoise(X), dae.denoise(X))
    assert all(v.device.type == "cpu" for v in clone._noise_reference.values())
    clone.set_params(warm_start=True).fit(X)  # can keep training after loading


def test_log_loss_masking_sets_zero(digits):
    X = digits[0][:300] / 16.0
    dae = fast(DenoisingAE, loss="log_loss", noise_level=0.5).fit(X)
    assert torch.equal(dae._noise_reference["zero"], torch.zeros(64))
    assert dae.denoise(X).min() >= 0.0 and dae.denoise(X).max() <= 1.0


@pytest.mark.parametrize("noise", ["masking", "salt_and_pepper"])
def test_probability_noise_level_above_one_is_rejected(digits, noise):
    X = digits[0][:50]
    dae = fast(DenoisingAE, noise=noise, noise_level=1.5)
    with pytest.raises(ValueError, match=r"noise_level=1\.5 .*\[0, 1\]"):
        dae.fit(X)
    assert not hasattr(dae, "module_")
    # A standard deviation above 1 is fine for Gaussian noise.
    fast(DenoisingAE, noise="gaussian", noise_level=1.5).fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(noise="dropout"), "noise"),
        (dict(noise_level=-0.1), "noise_level"),
        (dict(noise_level="high"), "noise_level"),
    ],
)
def test_bad_params_raise(digits, params, match):
    with pytest.raises(ValueError, match=match):
        fast(DenoisingAE, **params).fit(digits[0][:50])


# ----------------------------------------------------------------------
# the point of it all: better reconstructions of corrupted digits
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_split():
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    perm = np.random.RandomState(0).permutation(len(X))
    return X[perm[:1200]], X[perm[1200:]]


# Same size and the same training budget for both: 100 full epochs (tol=0
# and n_iter_no_change=max_iter switch the stopping rule off), same seed.
SIZE = dict(
    n_components=16,
    hidden_layer_sizes=(64,),
    max_iter=100,
    tol=0.0,
    n_iter_no_change=100,
    random_state=0,
    device="cpu",
)


@pytest.fixture(scope="module")
def plain_ae(digits_split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AutoencoderTransformer(**SIZE).fit(digits_split[0])


# Measured with this setup (seed 0): squared error on the masked test digits
# 393 (denoiser) vs 663 (plain autoencoder) at 25% masking, a 41% gain, and
# 599 vs 1294 at 50%, a 54% gain. Over seeds 0-4 (weights, split and test
# noise) the gains were 39-44% and 51-61%. We require about half of that.
@pytest.mark.parametrize("noise_level, min_gain", [(0.25, 0.20), (0.5, 0.25)])
def test_denoiser_beats_plain_autoencoder_on_masked_digits(
    digits_split, plain_ae, noise_level, min_gain
):
    X_train, X_test = digits_split
    dae = DenoisingAE(noise="masking", noise_level=noise_level, **SIZE).fit(X_train)
    rng = np.random.RandomState(100)
    X_noisy = np.where(rng.uniform(size=X_test.shape) < noise_level, 0.0, X_test)

    def error(X_rec):
        return ((X_rec - X_test) ** 2).sum(axis=1).mean()

    assert dae.n_iter_ == plain_ae.n_iter_ == 100
    err_dae = error(dae.denoise(X_noisy))
    err_ae = error(plain_ae.inverse_transform(plain_ae.transform(X_noisy)))
    gain = 1 - err_dae / err_ae
    assert gain > min_gain, (err_dae, err_ae)
    # And the denoiser's output is much closer to the clean digits than the
    # corrupted input was (measured: 393 vs 977 and 599 vs 1961, ratios 0.40
    # and 0.31).
    assert err_dae < 0.6 * error(X_noisy)
