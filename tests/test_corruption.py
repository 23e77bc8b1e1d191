"""The corruption functions on their own, with a seeded generator."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae._corruption import check_noise_level, corrupt_batch, noise_reference, on_device


# ----------------------------------------------------------------------
# the corruption function on its own, with a seeded generator
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic():
    """200,000 entries, features in different units, no entry at 0 or an extreme."""
    rng = np.random.RandomState(0)
    ranges = np.array([1.0, 10.0, 100.0, 0.5])
    X = rng.uniform(1.0, 2.0, size=(50_000, 4)) * ranges
    mean, scale = X.mean(axis=0), X.std(axis=0)  # per-feature units
    X_t = torch.tensor(X, dtype=torch.float32)
    x = X_t.sub(X_t.new_tensor(mean)).div_(X_t.new_tensor(scale))  # as the base
    reference = noise_reference(x, mean, scale)
    mean, scale = torch.tensor(mean), torch.tensor(scale)
    return X_t, mean, scale, reference, x


@pytest.mark.parametrize("noise_level", [0.1, 0.25, 0.5])
def test_masking_sets_the_requested_fraction_to_zero_in_user_units(
    synthetic, noise_level
):
    X_t, mean, scale, reference, x = synthetic
    gen = torch.Generator().manual_seed(0)
    x_c = corrupt_batch(x, "masking", noise_level, reference, generator=gen)
    user = x_c.double() * scale + mean
    masked = user.abs() < 1e-4 * scale  # a 0 in the user's units
    # Binomial standard deviation of the fraction over 200,000 entries is at
    # most 0.0011; 0.006 is more than 5 of them.
    assert abs(masked.float().mean().item() - noise_level) < 0.006
    # Every feature is hit at the rate, not only the total.
    assert_allclose(masked.float().mean(dim=0).numpy(), noise_level, atol=0.012)
    # Untouched entries are returned exactly.
    assert torch.equal(x_c[~masked], x[~masked])


@pytest.mark.parametrize("noise_level", [0.1, 0.5, 3.0])
def test_gaussian_noise_level_is_a_standard_deviation_in_user_units(
    synthetic, noise_level
):
    X_t, mean, scale, reference, x = synthetic
    gen = torch.Generator().manual_seed(0)
    x_c = corrupt_batch(x, "gaussian", noise_level, reference, generator=gen)
    eps = (x_c.double() - x.double()) * scale  # the added noise, in X's units
    # Per feature: 50,000 draws, so the sample std is within ~0.3% (1 sd) of
    # the truth and the mean within 0.0045 * noise_level; allow 2% and 0.02.
    assert_allclose(eps.std(dim=0).numpy(), noise_level, rtol=0.02)
    assert_allclose(eps.mean(dim=0).numpy() / noise_level, 0.0, atol=0.02)


@pytest.mark.parametrize("noise_level", [0.1, 0.25, 0.5])
def test_salt_and_pepper_sets_the_requested_fraction_to_feature_extremes(
    synthetic, noise_level
):
    X_t, mean, scale, reference, x = synthetic
    gen = torch.Generator().manual_seed(0)
    x_c = corrupt_batch(x, "salt_and_pepper", noise_level, reference, generator=gen)
    user = x_c.double() * scale + mean
    lo, hi = X_t.double().amin(dim=0), X_t.double().amax(dim=0)
    tol = 1e-6 * X_t.double().abs().amax(dim=0)
    salt = (user - hi).abs() < tol
    pepper = (user - lo).abs() < tol
    # Uniform data: only one entry per feature sits at each extreme, so the
    # entries found there are the corrupted ones (up to 4 of 200,000).
    assert abs(salt.float().mean().item() - noise_level / 2) < 0.005
    assert abs(pepper.float().mean().item() - noise_level / 2) < 0.005
    changed = x_c != x
    assert abs(changed.float().mean().item() - noise_level) < 0.006
    assert torch.all(salt | pepper | ~changed)


@pytest.mark.parametrize("noise", ["masking", "gaussian", "salt_and_pepper"])
def test_corruption_is_seeded_and_zero_level_draws_nothing(synthetic, noise):
    *_, reference, x = synthetic
    x = x[:1000]
    a = corrupt_batch(x, noise, 0.3, reference, torch.Generator().manual_seed(1))
    b = corrupt_batch(x, noise, 0.3, reference, torch.Generator().manual_seed(1))
    c = corrupt_batch(x, noise, 0.3, reference, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    gen = torch.Generator().manual_seed(1)
    state = gen.get_state()
    assert corrupt_batch(x, noise, 0, reference, gen) is x
    assert torch.equal(gen.get_state(), state)


def test_noise_reference_is_the_image_of_zero_and_the_extremes():
    X = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    mean, scale = X.mean(axis=0), X.std(axis=0)
    X_t = torch.tensor((X - mean) / scale, dtype=torch.float32)
    ref = noise_reference(X_t, mean, scale)
    assert_allclose(ref["zero"].numpy(), -mean / scale, rtol=1e-6)
    assert_allclose(ref["low"].numpy(), (X.min(0) - mean) / scale, rtol=1e-6)
    assert_allclose(ref["high"].numpy(), (X.max(0) - mean) / scale, rtol=1e-6)
    assert_allclose(ref["unit"].numpy(), 1 / scale, rtol=1e-6)
    assert on_device(ref, torch.device("cpu")) is ref


def test_noise_level_must_be_a_probability_for_masking():
    check_noise_level("gaussian", 3.0)
    check_noise_level("masking", 1.0)
    with pytest.raises(ValueError, match="noise_level=1.5 must be a probability"):
        check_noise_level("salt_and_pepper", 1.5)
