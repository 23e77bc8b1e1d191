"""User-supplied encoder/decoder modules (bring your own nn.Module)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from skae import (
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    StackedAE,
    VariationalAE,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _pair(n_features=64, k=4, code_width=None, hidden=16):
    torch.manual_seed(0)
    encoder = nn.Sequential(
        nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, code_width or k)
    )
    decoder = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, n_features))
    return encoder, decoder


def _state(module):
    return [t.detach().clone() for t in module.state_dict().values()]


def test_user_module_is_never_trained_in_place(digits):
    X = digits[0][:300]
    encoder, decoder = _pair()
    before = _state(encoder) + _state(decoder)
    ae = AutoencoderTransformer(4, encoder=encoder, decoder=decoder, max_iter=5,
                                device="cpu", random_state=0).fit(X)
    after = _state(encoder) + _state(decoder)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert ae.get_params()["encoder"] is encoder
    assert ae.module_.encoder is not encoder
    # The fitted copy did train: it moved away from the user's weights.
    assert not torch.equal(ae.module_.encoder[0].weight, encoder[0].weight)
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]
    # Refits start again from the user's weights: same seed, same model.
    again = clone(ae).fit(X)
    np.testing.assert_allclose(again.transform(X), ae.transform(X), rtol=1e-5, atol=1e-5)


def test_clone_and_grid_search_with_a_module_parameter(digits):
    X = digits[0][:200]
    encoder, decoder = _pair()
    ae = AutoencoderTransformer(4, encoder=encoder, decoder=decoder, max_iter=2, device="cpu",
                                random_state=0)
    copy = clone(ae)
    assert copy.encoder is not encoder and isinstance(copy.encoder, nn.Sequential)
    grid = GridSearchCV(ae, {"learning_rate_init": [1e-3, 1e-2]}, cv=2).fit(X)
    assert np.isfinite(grid.best_score_)
    assert all(torch.equal(a, b) for a, b in zip(_state(encoder), _pair()[0].state_dict().values()))


def test_wrong_module_shapes_fail_before_training(digits):
    X = digits[0][:100]
    encoder, decoder = _pair(k=5)  # codes of width 5, not 4
    ae = AutoencoderTransformer(4, encoder=encoder, decoder=decoder, device="cpu")
    match = r"encoder module maps .* \(2, 64\) to \(2, 5\); skae needs \(2, 4\)"
    with pytest.raises(ValueError, match=match):
        ae.fit(X)
    assert not hasattr(ae, "module_")
    encoder, decoder = _pair(n_features=10)
    with pytest.raises(ValueError, match=r"encoder module fails on a batch of shape \(2, 64\)"):
        AutoencoderTransformer(4, encoder=encoder, decoder=decoder, device="cpu").fit(X)
    with pytest.raises(ValueError, match="user decoder"):
        AutoencoderTransformer(4, encoder=_pair()[0], device="cpu").fit(X)
    with pytest.raises(ValueError, match="tied_weights"):
        AutoencoderTransformer(4, encoder=_pair()[0], decoder=_pair()[1], tied_weights=True).fit(X)


def test_variational_user_encoder_gives_mean_and_log_variance(digits):
    X = digits[0][:300]
    encoder, decoder = _pair(code_width=8)
    vae = VariationalAE(4, encoder=encoder, decoder=decoder, max_iter=5, device="cpu",
                        random_state=0).fit(X)
    mean, log_var = vae.module_.posterior(torch.as_tensor(X[:3], dtype=torch.float32))
    assert mean.shape == log_var.shape == (3, 4)
    assert vae.transform(X).shape == (300, 4)
    assert vae.sample(3, random_state=0).shape == (3, 64)
    assert np.isfinite(vae.score(X))
    with pytest.raises(ValueError, match=r"skae needs \(2, 8\)"):
        VariationalAE(4, encoder=_pair()[0], decoder=_pair()[1], device="cpu").fit(X)


def test_contractive_and_denoising_with_user_modules(digits):
    X = digits[0][:200]
    for cls, kw in [(ContractiveAE, {"contraction_weight": 1.0}), (DenoisingAE, {})]:
        encoder, decoder = _pair()
        est = cls(4, encoder=encoder, decoder=decoder, max_iter=3, device="cpu",
                  random_state=0, **kw).fit(X)
        assert est.loss_curve_[-1] < est.loss_curve_[0]
    J = est.jacobian(X[:3]) if hasattr(est, "jacobian") else None
    assert J is None  # DenoisingAE last; ContractiveAE.jacobian is tested below
    encoder, decoder = _pair()
    cae = ContractiveAE(4, encoder=encoder, decoder=decoder, max_iter=2, device="cpu",
                        random_state=0).fit(X)
    assert cae.jacobian(X[:3]).shape == (3, 4, 64)


def test_stacked_user_modules_fine_tune_only(digits):
    X = digits[0][:200]
    encoder, decoder = _pair()
    with pytest.raises(ValueError, match="user-supplied module set pretrain_max_iter=0"):
        StackedAE(4, encoder=encoder, decoder=decoder, device="cpu").fit(X)
    est = StackedAE(4, encoder=encoder, decoder=decoder, pretrain_max_iter=0, max_iter=3,
                    device="cpu", random_state=0).fit(X)
    assert est.transform(X).shape == (200, 4)


def test_user_module_pickles_but_does_not_save(digits, tmp_path):
    X = digits[0][:200]
    encoder, decoder = _pair()
    ae = AutoencoderTransformer(4, encoder=encoder, decoder=decoder, max_iter=2, device="cpu",
                                random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(back.transform(X), ae.transform(X))
    with pytest.raises(TypeError, match="cannot be rebuilt without running its code"):
        ae.save(tmp_path / "user.skae")
    assert not (tmp_path / "user.skae").exists()


def test_float64_user_module_and_float64_inference(digits):
    X = digits[0][:200]
    encoder, decoder = _pair()
    ae = AutoencoderTransformer(4, encoder=encoder.double(), decoder=decoder.double(),
                                max_iter=2, device="cpu", random_state=0).fit(X)
    assert encoder[0].weight.dtype == torch.float64  # the user's module untouched
    np.testing.assert_allclose(ae.transform(X), ae.transform(X.astype(np.float32)),
                               rtol=1e-4, atol=1e-4)
