import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae._losses import (
    ReconstructionLoss,
    gaussian_kl,
    l1_activity,
    l2_penalty,
    log_loss_with_logits,
    squared_error,
)


def test_squared_error_is_per_sample_sum():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert_allclose(squared_error(a, b).numpy(), [5.0, 25.0])


def test_log_loss_matches_explicit_formula(rng):
    logits = torch.tensor(rng.normal(size=(4, 3)))
    x = torch.tensor(rng.uniform(size=(4, 3)))
    p = torch.sigmoid(logits)
    expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1)
    assert_allclose(log_loss_with_logits(logits, x).numpy(), expected.numpy(), rtol=1e-10)


def test_l2_and_l1():
    w = [torch.ones(2, 3), 2 * torch.ones(1, 2)]
    assert float(l2_penalty(w)) == pytest.approx(0.5 * (6 + 8))
    assert_allclose(l1_activity(torch.tensor([[-1.0, 2.0], [0.5, 0.0]])).numpy(), [3.0, 0.5])


def test_gaussian_kl_closed_form_against_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mean = torch.tensor([[0.5, -1.0, 0.0]], dtype=torch.float64)
    log_var = torch.tensor([[-0.5, 0.3, 0.0]], dtype=torch.float64)
    std = (0.5 * log_var).exp()
    z = mean + std * torch.randn(200_000, 3, generator=gen, dtype=torch.float64)
    log_q = (-0.5 * ((z - mean) / std) ** 2 - torch.log(std)).sum(1)
    log_p = (-0.5 * z**2).sum(1)
    mc = float((log_q - log_p).mean())
    assert float(gaussian_kl(mean, log_var)[0]) == pytest.approx(mc, abs=5e-3)
    # KL of the prior with itself is zero.
    assert float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))[0]) == 0.0


def test_reconstruction_loss_applies_output_activation_for_squared_error():
    logits = torch.tensor([[0.0, 2.0]])
    target = torch.tensor([[0.5, 0.5]])
    sq = ReconstructionLoss("squared_error", "logistic")(logits, target)
    expected = ((torch.sigmoid(logits) - target) ** 2).sum(1)
    assert_allclose(sq.numpy(), expected.numpy())
    ll = ReconstructionLoss("log_loss")(logits, target)
    assert_allclose(ll.numpy(), log_loss_with_logits(logits, target).numpy())
    assert np.all(ll.numpy() > 0)
