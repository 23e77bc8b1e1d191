"""The loss terms and penalties as pure tensor functions (``skae._losses``)."""

import numpy as np
import pytest
import torch
from _helpers import SEEDED_CPU, assert_close_rel, bruteforce_penalty
from numpy.testing import assert_allclose, assert_array_equal

from skae import ContractiveAE
from skae._losses import (
    ReconstructionLoss,
    _gram_is_cheaper,
    contractive_penalty,
    contractive_penalty_closed_form,
    encoder_jacobian,
    gaussian_kl,
    l1_activity,
    l2_penalty,
    log_loss_with_logits,
    nca_loss,
    squared_error,
)
from skae._modules import Autoencoder


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


def _grads(value, module):
    params = list(module.parameters())
    grads = torch.autograd.grad(value.sum(), params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


# ----------------------------------------------------------------------------
# the penalty functions
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("code_activation", ["logistic", "tanh", "relu", "identity"])
def test_general_penalty_matches_closed_form_one_layer(digits, code_activation):
    # On a trained one-layer encoder h = f(b + W x), the autograd penalty
    # (both through the first-layer shortcut and straight to x) equals
    # sum_j f'(a_j)^2 ||W_j||^2, value and parameter gradients, in float32.
    X, _ = digits
    cae = ContractiveAE(
        n_components=16,
        hidden_layer_sizes=(),
        code_activation=code_activation,
        max_iter=10,
        **SEEDED_CPU,
    ).fit(X[:500])
    module = cae.module_.train()
    x = module.normalize(torch.tensor(X[500:700], dtype=torch.float32))
    closed = contractive_penalty_closed_form(
        module.encode(x), module.code.weight, code_activation
    )
    assert closed.shape == (200,) and bool(torch.all(closed > 0))
    closed_grads = _grads(closed, module)
    first = module.encoder_layers()[0]
    assert first is module.code
    for general in (
        contractive_penalty(module.encode, x, first, gram=True),
        contractive_penalty(module.encode, x, first, gram=False),
        contractive_penalty(module.encode, x),
    ):
        # Measured: <= 4e-7 relative in float32 (1e-16 in float64).
        assert_close_rel(general, closed, 1e-5)
        for g, g_ref in zip(_grads(general, module), closed_grads):
            assert_close_rel(g, g_ref, 1e-4)


@pytest.mark.parametrize(
    "hidden, activation, code_activation, tied",
    [
        ((24,), "relu", "identity", False),
        ((16, 8), "logistic", "logistic", True),
        ((40,), "tanh", "tanh", False),
    ],
)
def test_general_penalty_exact_for_deep_encoders(
    hidden, activation, code_activation, tied
):
    # float64, against one full Jacobian per sample: exact to rounding.
    torch.manual_seed(0)
    module = Autoencoder(
        20, 5, hidden, activation, code_activation, tied_weights=tied
    ).double()
    x = torch.randn(12, 20, dtype=torch.float64)
    ref = bruteforce_penalty(module.encode, x)
    ref_grads = _grads(ref, module)
    first = module.encoder_layers()[0]
    for gram in (True, False, None):
        value = contractive_penalty(module.encode, x, first, gram=gram)
        assert_close_rel(value, ref, 1e-12)
        for g, g_ref in zip(_grads(value, module), ref_grads):
            assert_close_rel(g, g_ref, 1e-10)
    value = contractive_penalty(module.encode, x)  # no shortcut
    assert_close_rel(value, ref, 1e-12)


def test_penalty_falls_back_when_first_layer_is_not_fed_x():
    # A layer that does not see x directly must not be used for the shortcut.
    torch.manual_seed(0)
    module = Autoencoder(10, 3, (6,), "tanh").double()
    x = torch.randn(7, 10, dtype=torch.float64)

    def encode(v):
        return module.encode(2.0 * v)

    ref = bruteforce_penalty(encode, x)
    value = contractive_penalty(encode, x, module.encoder_layers()[0])
    assert_close_rel(value, ref, 1e-12)


def test_gram_rule():
    # 784-256-... encoder at batch 128: direct for k=2, Gram form for k=30.
    assert not _gram_is_cheaper(2, 128, 256, 784)
    assert _gram_is_cheaper(30, 128, 256, 784)
    # Never for a first layer wider than the input.
    assert not _gram_is_cheaper(30, 128, 1000, 784)


def test_encoder_jacobian_matches_bruteforce():
    torch.manual_seed(0)
    module = Autoencoder(9, 4, (7,), "tanh", "logistic").double()
    x = torch.randn(5, 9, dtype=torch.float64)
    jac = encoder_jacobian(module.encode, x)
    assert jac.shape == (5, 4, 9)
    for i in range(5):
        ref = torch.autograd.functional.jacobian(
            lambda v: module.encode(v[None])[0], x[i]
        )
        torch.testing.assert_close(jac[i], ref, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------
# the batch NCA loss
# ----------------------------------------------------------------------
def test_nca_loss_matches_brute_force(rng):
    z = rng.normal(size=(7, 3))
    y = np.array([0, 1, 0, 2, 1, 0, 2])
    expected = np.empty(len(z))
    for i in range(len(z)):
        d = ((z - z[i]) ** 2).sum(1)
        w = np.exp(-d)
        w[i] = 0.0
        p = w / w.sum()
        expected[i] = 1.0 - p[y == y[i]].sum()
    got = nca_loss(torch.tensor(z), torch.tensor(y))
    assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_nca_loss_single_sample_and_gradient():
    z = torch.zeros(1, 2, requires_grad=True)
    loss = nca_loss(z, torch.tensor([3]))
    loss.sum().backward()
    assert float(loss.detach()) == 1.0
    assert_array_equal(z.grad.numpy(), 0.0)
    # Same-class points are pulled together: the gradient on z_0 points to z_1.
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    nca_loss(z, torch.tensor([0, 0, 1])).mean().backward()
    assert z.grad[0, 0] < 0
