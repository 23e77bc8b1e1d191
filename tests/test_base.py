"""The scikit-learn contract held by _BaseAutoencoder (via AutoencoderTransformer)."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from skorch.callbacks import Callback

import skae._modules
from skae import AutoencoderTransformer

CPU = dict(device="cpu", random_state=0)


def _fitted(X, **kw):
    params = dict(n_components=3, hidden_layer_sizes=(16,), max_iter=3, **CPU)
    params.update(kw)
    return AutoencoderTransformer(**params).fit(X)


def test_same_seed_identical_none_differs_and_global_rng_untouched(digits):
    X, _ = digits
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = _fitted(X).transform(X)
    b = _fitted(X).transform(X)
    assert_array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    c = _fitted(X, random_state=None).transform(X)
    d = _fitted(X, random_state=None).transform(X)
    assert not np.allclose(c, d)


def test_refit_is_idempotent_and_resets(digits):
    X, _ = digits
    ae = _fitted(X)
    first = ae.transform(X)
    ae.fit(X)
    assert_array_equal(ae.transform(X), first)
    assert ae.n_iter_ == 3


def test_unfitted_raises_not_fitted(digits):
    X, _ = digits
    ae = AutoencoderTransformer()
    for method in ("transform", "inverse_transform", "score_samples", "score"):
        with pytest.raises(NotFittedError):
            getattr(ae, method)(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 65}, r"n_components=65 must be between 1 and n_features=64"),
        ({"hidden_layer_sizes": (10, 0)}, r"hidden_layer_sizes must be positive"),
        ({"device": "tpu"}, r"device='tpu'"),
        ({"early_stopping": True}, None),  # fine on digits
    ],
)
def test_data_dependent_checks(digits, params, match):
    X, _ = digits
    ae = AutoencoderTransformer(max_iter=1, **{**CPU, **params})
    if match is None:
        ae.fit(X)
        return
    with pytest.raises(ValueError, match=match):
        ae.fit(X)
    assert not hasattr(ae, "n_features_in_")  # nothing half-set


@pytest.mark.parametrize(
    "bad_X, exc, match",
    [
        (np.full((5, 64), np.nan), ValueError, "NaN"),
        (np.full((5, 64), np.inf), ValueError, "infinity"),
        (np.ones((5, 3)), ValueError, "features"),
        (np.array([["a"] * 64] * 5), ValueError, "float"),
        (np.ones((0, 64)), ValueError, "0 sample"),
    ],
)
def test_failed_fit_leaves_fitted_estimator_unchanged(digits, bad_X, exc, match):
    X, _ = digits
    ae = _fitted(X, warm_start=True)
    before_state = dict(vars(ae))
    before = ae.transform(X)
    with pytest.raises(exc, match=match):
        ae.fit(bad_X)
    assert vars(ae).keys() == before_state.keys()
    assert all(vars(ae)[k] is before_state[k] for k in before_state)
    assert_array_equal(ae.transform(X), before)


def test_divergence_is_a_clear_error_and_changes_nothing(digits):
    X, _ = digits
    ae = AutoencoderTransformer(3, solver="sgd", learning_rate_init=1e4, max_iter=5, **CPU)
    with pytest.raises(ValueError, match=r"diverged.*learning_rate_init=10000"):
        ae.fit(X)
    assert not hasattr(ae, "module_") and not hasattr(ae, "n_features_in_")
    # A fitted model that diverges while warm-starting keeps its old weights.
    ae = _fitted(X, warm_start=True, solver="sgd")
    before = ae.transform(X)
    ae.set_params(learning_rate_init=1e4)
    with pytest.raises(ValueError, match="diverged"):
        ae.fit(X)
    assert_array_equal(ae.transform(X), before)
    assert ae.learning_rate_init == 1e4  # hyperparameters are the user's


def test_inverse_transform_checks_code_width(digits):
    X, _ = digits
    ae = _fitted(X)
    with pytest.raises(ValueError, match=r"X has 2 features.*n_components=3"):
        ae.inverse_transform(np.zeros((4, 2)))


def test_partial_fit_initialises_then_resumes(digits):
    X, _ = digits
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(16,), **CPU)
    ae.partial_fit(X[:500])
    assert ae.n_iter_ == 1 and ae.t_ == 500
    first_module = ae.module_
    ae.partial_fit(X[500:1000])
    assert ae.n_iter_ == 2 and ae.t_ == 1000
    assert ae.module_ is not first_module  # trained on a copy, then swapped in
    assert_array_equal(ae.mean_, X[:500].mean(0))  # stats from the first chunk
    with pytest.raises(ValueError, match="X has 10 features"):
        ae.partial_fit(X[:10, :10])
    with pytest.raises(ValueError, match="early_stopping"):
        AutoencoderTransformer(early_stopping=True, **CPU).partial_fit(X)


def test_warm_start_continues_and_guards_architecture(digits):
    X, _ = digits
    ae = _fitted(X, warm_start=True, tol=0.0)
    loss_after_3 = ae.loss_curve_[-1]
    ae.fit(X)
    assert ae.n_iter_ == 6 and len(ae.loss_curve_) == 6
    assert ae.loss_curve_[-1] < loss_after_3
    ae.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components"):
        ae.fit(X)


def test_batch_size_auto_and_clipping(digits):
    X, _ = digits
    assert _fitted(X[:50]).batch_size_ == 50
    assert _fitted(X).batch_size_ == 200
    with pytest.warns(UserWarning, match="clipped"):
        ae = _fitted(X[:30], batch_size=64)
    assert ae.batch_size_ == 30


def test_get_feature_names_out(digits):
    X, _ = digits
    names = _fitted(X).get_feature_names_out()
    assert list(names) == [
        "autoencodertransformer0",
        "autoencodertransformer1",
        "autoencodertransformer2",
    ]


def test_score_samples_ranks_outliers(digits):
    X, _ = digits
    ae = _fitted(X[:1000], max_iter=20)
    rng = np.random.RandomState(0)
    noise = rng.uniform(0, 16, size=(20, 64))
    scores = ae.score_samples(np.vstack([X[1000:1100], noise]))
    # Every random image scores below the 10th percentile of real digits.
    assert np.all(scores[100:] < np.percentile(scores[:100], 10))


class _StartWeights(Callback):
    def on_train_begin(self, net, **kwargs):
        self.state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_alpha_is_mlps_penalty_on_the_weights(solver, tied, rng):
    # alpha's gradient comes from the optimiser's weight_decay, not from
    # autograd: two steps must equal two steps on MLP's penalised loss
    # 0.5 * alpha * sum ||W||^2 / batch, biases excluded, with batches of
    # two sizes (the last one short) to check the per-batch scaling.
    X = rng.normal(size=(30, 6)).astype(np.float32)
    start = _StartWeights()
    alpha, lr = 3.0, 0.05
    est = AutoencoderTransformer(
        2, hidden_layer_sizes=(4,), alpha=alpha, solver=solver, learning_rate_init=lr,
        batch_size=20, shuffle=False, normalize=None, max_iter=1, tied_weights=tied,
        random_state=0, device="cpu", callbacks=[start],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)

    ref = skae._modules.Autoencoder(6, 2, hidden_layer_sizes=(4,), tied_weights=tied)
    ref.load_state_dict(start.state)
    if solver == "adam":
        opt = torch.optim.Adam(ref.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(ref.parameters(), lr=lr, momentum=0.9, nesterov=True)
    x_all = torch.from_numpy(X)
    for xb in (x_all[:20], x_all[20:]):
        decoded, _ = ref(xb)
        loss = (decoded - xb).pow(2).sum(1).mean()
        loss = loss + 0.5 * alpha * sum(w.pow(2).sum() for w in ref.weights()) / len(xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(est.module_.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    # The reported loss still carries the penalty's value, as MLP's does.
    plain = AutoencoderTransformer(
        2, hidden_layer_sizes=(4,), alpha=0.0, solver=solver, learning_rate_init=lr,
        batch_size=20, shuffle=False, normalize=None, max_iter=1, tied_weights=tied,
        random_state=0, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X)
    assert est.loss_curve_[0] > plain.loss_curve_[0]
