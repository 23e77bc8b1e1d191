"""The built-in convolutional stack (encoder='conv') with every variant."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import skae
from skae import (
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    StackedAE,
    VariationalAE,
)
from skae._custom_modules import conv_stack

CONV = dict(encoder="conv", input_shape=(1, 8, 8), conv_channels=(8, 16), device="cpu",
            random_state=0)


def _sse(model, X):
    return float(((model.inverse_transform(model.transform(X)) - X) ** 2).sum(1).mean())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_beats_pca_on_digits(digits):
    X = digits[0]
    X_train, X_test = X[:1400], X[1400:]
    ae = AutoencoderTransformer(
        n_components=8, max_iter=15, learning_rate_init=3e-3, batch_size=64,
        **{**CONV, "conv_channels": (16, 32)},
    ).fit(X_train)
    pca = PCA(8).fit(X_train)
    conv_err, pca_err = _sse(ae, X_test), _sse(pca, X_test)
    assert conv_err < 0.9 * pca_err, (conv_err, pca_err)


@pytest.mark.parametrize("shape", [(1, 7, 9), (2, 5, 6), (3, 21), (1, 1, 4)])
@pytest.mark.parametrize("kernel_size", [3, 4])
def test_conv_stack_restores_the_input_shape(shape, kernel_size):
    n = int(np.prod(shape))
    encoder, decoder, width = conv_stack(shape, 3, (4, 5), kernel_size, "relu")
    code = encoder(torch.zeros(2, n))
    assert code.shape == (2, 3)
    assert decoder(code).shape == (2, n)
    assert width >= n


def test_wrong_input_shape_names_both_numbers(digits):
    X = digits[0][:50]
    ae = AutoencoderTransformer(n_components=2, encoder="conv", input_shape=(1, 7, 7))
    with pytest.raises(ValueError, match=r"49 values .* n_features=64"):
        ae.fit(X)
    with pytest.raises(ValueError, match="needs input_shape"):
        AutoencoderTransformer(encoder="conv").fit(X)
    with pytest.raises(ValueError, match="tied_weights"):
        AutoencoderTransformer(tied_weights=True, **CONV).fit(X)
    assert not hasattr(ae, "module_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", [DenoisingAE, ContractiveAE, VariationalAE])
def test_every_variant_trains_a_conv_stack(cls, digits):
    X = digits[0][:300]
    est = cls(n_components=4, max_iter=3, **CONV).fit(X)
    assert isinstance(est.module_.encoder[1], torch.nn.Conv2d)
    assert est.transform(X).shape == (300, 4)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    assert np.isfinite(est.score(X))
    assert est.loss_curve_[-1] < est.loss_curve_[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_contractive_penalty_through_conv_matches_brute_force():
    rng = np.random.RandomState(0)
    X = rng.rand(20, 12)
    cae = ContractiveAE(
        n_components=3, encoder="conv", input_shape=(1, 3, 4), conv_channels=(2, 3),
        code_activation="tanh", max_iter=2, device="cpu", random_state=0,
    ).fit(X)
    module = cae.module_.double()
    x = torch.as_tensor(X[:5])
    penalty = cae._contraction(module, x, module.encode(x))
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda v: module.encode(v[None])[0], x[i])
        assert jac.shape == (3, 12)
        np.testing.assert_allclose(float(penalty[i].detach()), float(jac.pow(2).sum()), rtol=1e-10)
    # jacobian() is in the units of X, through the normalisation.
    J = cae.jacobian(X[:2])
    f = lambda v: module.encode(module.normalize(v[None]))[0]  # noqa: E731
    brute = torch.autograd.functional.jacobian(f, torch.as_tensor(X[1]))
    np.testing.assert_allclose(J[1], brute.numpy(), rtol=1e-5, atol=1e-8)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_saves_loads_and_pickles(digits, tmp_path):
    X = digits[0][:200]
    ae = AutoencoderTransformer(n_components=4, max_iter=2, **CONV).fit(X)
    path = tmp_path / "conv.skae"
    ae.save(path)
    loaded = skae.load(path)
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))
    unpickled = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(unpickled.inverse_transform(ae.transform(X)),
                                  ae.inverse_transform(ae.transform(X)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_warm_start_keeps_shape_and_refuses_changes(digits):
    X = digits[0][:200]
    ae = AutoencoderTransformer(n_components=4, max_iter=2, warm_start=True, **CONV).fit(X)
    ae.fit(X)
    assert ae.n_iter_ == 4
    ae.set_params(conv_channels=(4, 8))
    with pytest.raises(ValueError, match="conv_channels"):
        ae.fit(X)
    # float64 inference runs through a float64 copy of the conv module.
    np.testing.assert_allclose(
        ae.transform(X), ae.transform(X.astype(np.float32)), rtol=1e-4, atol=1e-4
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_switching_network_kind_on_warm_start_is_refused(digits):
    X = digits[0][:100]
    ae = AutoencoderTransformer(n_components=4, max_iter=1, warm_start=True, **CONV).fit(X)
    ae.set_params(encoder=None)
    with pytest.raises(ValueError, match="changing conv_channels, encoder"):
        ae.fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_stacked_pretrains_the_conv_stack_layer_by_layer(digits):
    X = digits[0][:400]
    est = StackedAE(n_components=4, pretrain_max_iter=3, max_iter=2, noise="masking",
                    noise_level=0.2, **CONV).fit(X)
    curves = est.pretrain_loss_curves_
    assert len(curves) == 3  # two convolutions, then the code layer
    assert all(len(c) == 3 and c[-1] < c[0] for c in curves)
    # The pretrained first convolution starts fine-tuning better than chance:
    # the unpretrained network's first epoch is worse.
    cold = StackedAE(n_components=4, pretrain_max_iter=0, max_iter=2, **CONV).fit(X)
    assert est.loss_curve_[0] < cold.loss_curve_[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_fits_are_reproducible_and_leave_torch_rng_alone(digits):
    X = digits[0][:100]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = AutoencoderTransformer(n_components=2, max_iter=2, **CONV).fit(X)
    assert torch.equal(torch.rand(3), expected)  # the user's stream is untouched
    b = AutoencoderTransformer(n_components=2, max_iter=2, **CONV).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
