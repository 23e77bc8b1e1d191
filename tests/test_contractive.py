"""ContractiveAE: the exact Jacobian penalty, its closed form, and jacobian()."""

import numpy as np
import pytest
import torch
from _helpers import SEEDED_CPU, assert_close_rel, bruteforce_penalty
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoencoderTransformer, ContractiveAE
from skae._base import _BaseAutoencoder
from skae._losses import encoder_jacobian



# ----------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hidden, code_activation", [((20,), "identity"), ((), "logistic")]
)
def test_loss_adds_weighted_mean_penalty_on_normalised_input(
    digits, hidden, code_activation
):
    # The training objective is the plain one plus weight * mean_i ||J(x_i)||^2,
    # J taken on the (normalised) input the module sees; through the general
    # path (deep) and the closed-form fast path (one layer).
    X, _ = digits
    cae = ContractiveAE(
        n_components=6, hidden_layer_sizes=hidden, code_activation=code_activation,
        contraction_weight=0.7, max_iter=3, **SEEDED_CPU,
    ).fit(X[:300])
    module = cae.module_.train()
    x = module.normalize(torch.tensor(X[300:340], dtype=torch.float32))
    out = module(x)
    total = cae._loss(cae._net, x, x, None, out)
    plain = _BaseAutoencoder._loss(cae, cae._net, x, x, None, out)
    expected = 0.7 * bruteforce_penalty(module.encode, x).mean()
    # Measured relative difference ~1e-7 (float32).
    assert_close_rel(total - plain, expected, 1e-5)


def test_zero_weight_trains_exactly_the_plain_autoencoder(digits):
    X, _ = digits
    params = dict(n_components=4, hidden_layer_sizes=(16,), max_iter=8, **SEEDED_CPU)
    cae = ContractiveAE(contraction_weight=0.0, **params).fit(X[:400])
    ae = AutoencoderTransformer(**params).fit(X[:400])
    assert cae.loss_curve_ == ae.loss_curve_
    np.testing.assert_array_equal(cae.transform(X[400:500]), ae.transform(X[400:500]))
    # ... and a positive weight does change training.
    cae.set_params(contraction_weight=0.5).fit(X[:400])
    assert cae.loss_curve_[-1] != ae.loss_curve_[-1]


def test_contraction_lowers_heldout_jacobian(digits):
    # Same network, seed and epochs; only contraction_weight differs. The CAE's
    # mean Frobenius norm of the Jacobian on held-out digits is much lower at
    # about the same reconstruction error.
    X, _ = digits
    rng = np.random.RandomState(0)
    perm = rng.permutation(len(X))
    X_train, X_test = X[perm[:1200]], X[perm[1200:]]
    params = dict(
        n_components=8, hidden_layer_sizes=(32,), code_activation="tanh",
        max_iter=40, **SEEDED_CPU,
    )
    # contraction_weight=0 is the plain AutoencoderTransformer, bit for bit
    # (test above), and gives it a jacobian method.
    ae = ContractiveAE(contraction_weight=0.0, **params).fit(X_train)
    cae = ContractiveAE(contraction_weight=1.0, **params).fit(X_train)

    def mean_frobenius(model):
        J = model.jacobian(X_test)
        return np.sqrt((J**2).sum(axis=(1, 2))).mean()

    fro_ae, fro_cae = mean_frobenius(ae), mean_frobenius(cae)
    # Measured: 0.340 (AE) vs 0.218 (CAE), a 36% reduction; require 18%.
    assert fro_cae < (1 - 0.18) * fro_ae, (fro_ae, fro_cae)
    # Measured held-out errors: 581 (AE) vs 555 (CAE); require within 10%.
    assert -cae.score(X_test) < 1.10 * -ae.score(X_test)


def test_jacobian_matches_finite_differences_in_user_units(digits):
    X, _ = digits
    cae = ContractiveAE(
        n_components=3, hidden_layer_sizes=(12,), code_activation="tanh",
        normalize="feature", max_iter=5, **SEEDED_CPU,
    ).fit(X[:300])
    X0 = X[300:304].astype(np.float64)
    J = cae.jacobian(X0)
    assert J.shape == (4, 3, 64) and J.dtype == np.float64
    eps = 1e-5
    fd = np.empty_like(J)
    for col in range(X0.shape[1]):
        step = np.zeros(X0.shape[1])
        step[col] = eps
        diff = cae.transform(X0 + step) - cae.transform(X0 - step)
        fd[:, :, col] = diff / (2 * eps)
    # Central differences on a float64 network: measured error 6e-10 of max|J|.
    np.testing.assert_allclose(J, fd, atol=1e-7 * np.abs(J).max())
    # Constant pixels get scale 1 under normalize='feature'; the rest are
    # divided by their standard deviation: J * scale_ is the network's Jacobian.
    module = cae._inference_module(np.float64)
    x = module.normalize(torch.tensor(X0))
    net_jac = encoder_jacobian(module.encode, x)
    np.testing.assert_allclose(J * cae.scale_, net_jac.numpy(), rtol=1e-10, atol=1e-14)


def test_jacobian_dtype_and_subset_invariance(digits):
    X, _ = digits
    cae = ContractiveAE(n_components=5, hidden_layer_sizes=(10,), max_iter=3, **SEEDED_CPU)
    cae.fit(X[:200])
    J64 = cae.jacobian(X[:50])
    np.testing.assert_allclose(cae.jacobian(X[10:20]), J64[10:20], rtol=1e-12, atol=0)
    J32 = cae.jacobian(X[:50].astype(np.float32))
    assert J32.dtype == np.float32
    np.testing.assert_allclose(J32, J64, rtol=1e-4, atol=1e-6 * np.abs(J64).max())


def test_jacobian_singular_values_of_one_layer_sigmoid(digits):
    # For h = sigm(b + W x) the Jacobian is diag(h(1-h)) W / scale: check the
    # method against this formula on a fitted model.
    X, _ = digits
    cae = ContractiveAE(
        n_components=10, hidden_layer_sizes=(), code_activation="logistic",
        max_iter=5, **SEEDED_CPU,
    ).fit(X[:300])
    H = cae.transform(X[:20])
    W = cae.module_.code.weight.detach().double().numpy()
    expected = (H * (1 - H))[:, :, None] * W[None] / cae.scale_
    np.testing.assert_allclose(cae.jacobian(X[:20]), expected, rtol=1e-10, atol=1e-15)


def test_bad_parameters_and_input(digits):
    X, _ = digits
    with pytest.raises(InvalidParameterError, match="contraction_weight"):
        ContractiveAE(contraction_weight=-1.0).fit(X[:20])
    cae = ContractiveAE(n_components=2, hidden_layer_sizes=(4,), max_iter=1, **SEEDED_CPU)
    with pytest.raises(NotFittedError):
        cae.jacobian(X[:3])
    cae.fit(X[:20])
    with pytest.raises(ValueError, match="features"):
        cae.jacobian(X[:3, :10])
