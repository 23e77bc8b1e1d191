"""The hand-written training step gives autograd's loss, gradients and fit, bit for bit."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import skae._fast_step as fast_step
from skae import (
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    SemanticHashing,
    StackedAE,
    VariationalAE,
)

ACTIVATIONS = ["relu", "tanh", "logistic", "identity"]
# (loss, output_activation): every output activation squared_error accepts.
LOSSES = [("squared_error", a) for a in ACTIVATIONS] + [("log_loss", None)]


class ListensPerBatch(Callback):
    """A per-batch listener: the net must then train with autograd."""

    def on_batch_end(self, net, **kwargs):
        pass


def _params(activation, loss, output, tied, alpha, code="identity", **extra):
    params = dict(
        n_components=2, hidden_layer_sizes=(6, 5), activation=activation, loss=loss,
        output_activation=output, tied_weights=tied, alpha=alpha, code_activation=code,
        random_state=0, device="cpu", tol=0.0,
    )
    return {**params, **extra}


def _data(loss, n=40, d=4, seed=0):
    X = np.random.RandomState(seed).rand(n, d)
    return X if loss != "log_loss" else (X > 0.5).astype(float)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, output", LOSSES)
@pytest.mark.parametrize("tied, alpha, code", [(False, 0.0, "identity"), (True, 0.3, "tanh")])
@pytest.mark.parametrize("hidden", [(6, 5), (40,)])
def test_step_gradients_equal_autograd_in_float64(activation, loss, output, tied, alpha, code,
                                                  hidden):
    X = _data(loss)
    est = AutoencoderTransformer(**_params(activation, loss, output, tied, alpha, code,
                                           max_iter=1, hidden_layer_sizes=hidden))
    net = est.fit(X)._net
    net.module_.double().train()
    step = fast_step.plan(net)
    assert step is not None
    x = torch.as_tensor(X[:17], dtype=torch.float64)

    params = list(net.module_.parameters())
    net.module_.zero_grad(set_to_none=True)
    output_ref = net.module_(x)
    loss_ref = net.objective._loss(net, x, x, None, output_ref)
    loss_ref.backward()
    grads_ref = [p.grad.clone() for p in params]

    net.module_.zero_grad(set_to_none=True)
    loss_fast, (decoded, code_out) = step(x)
    # The same ops in the same order: equal bit for bit, not just close.
    assert loss_fast.dtype == torch.float64
    assert torch.equal(loss_fast, loss_ref.detach())
    assert torch.equal(decoded, output_ref[0].detach())
    assert torch.equal(code_out, output_ref[1].detach())
    for p, ref in zip(params, grads_ref, strict=True):
        assert torch.equal(p.grad, ref)
    assert sum(float(ref.abs().sum()) for ref in grads_ref) > 0


@pytest.mark.parametrize(
    "activation, loss, output, tied, alpha",
    [
        ("relu", "squared_error", "identity", False, 1e-4),
        ("tanh", "squared_error", "logistic", True, 0.05),
        ("logistic", "log_loss", None, True, 0.0),
        ("identity", "squared_error", "tanh", False, 0.01),
    ],
)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_fit_equals_autograd_fit(activation, loss, output, tied, alpha, solver):
    # Several batches an epoch (the last one short), 6 epochs, same seed: the
    # fast fit and the autograd fit (forced by a per-batch listener) are the
    # same fit, bit for bit (float32, fused Adam or SGD).
    X = _data(loss, n=70, d=5, seed=1)
    params = _params(activation, loss, output, tied, alpha, max_iter=6, batch_size=16,
                     solver=solver, n_iter_no_change=100)
    fast = AutoencoderTransformer(**params).fit(X)
    slow = AutoencoderTransformer(callbacks=[ListensPerBatch()], **params).fit(X)
    assert fast_step.plan(fast._net) is not None
    assert fast_step.plan(slow._net) is None
    assert len(fast.loss_curve_) == 6
    assert fast.loss_curve_ == slow.loss_curve_
    for p, q in zip(fast.module_.parameters(), slow.module_.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(fast.module_.code.weight, AutoencoderTransformer(
        **{**params, "max_iter": 1}).fit(X).module_.code.weight)  # training moved it


@pytest.fixture
def step_calls(monkeypatch):
    """How many batches went through FastStep during the test."""
    calls = []
    original = fast_step.FastStep.__call__

    def counted(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(fast_step.FastStep, "__call__", counted)
    return calls


def test_plain_autoencoder_trains_with_the_fast_step(step_calls):
    X = _data("squared_error", n=50)
    AutoencoderTransformer(2, hidden_layer_sizes=(5,), max_iter=3, batch_size=20,
                           random_state=0).fit(X)
    assert step_calls == [20, 20, 10] * 3


FALLBACKS = {
    "denoising": lambda: DenoisingAE(2, hidden_layer_sizes=(5,)),
    "contractive": lambda: ContractiveAE(2, hidden_layer_sizes=(5,)),
    "variational": lambda: VariationalAE(2, hidden_layer_sizes=(5,)),
    "stacked": lambda: StackedAE(2, hidden_layer_sizes=(5,), pretrain_max_iter=1),
    "hashing": lambda: SemanticHashing(4, hidden_layer_sizes=(5,)),
    "sparsity": lambda: AutoencoderTransformer(2, hidden_layer_sizes=(5,), sparsity_weight=0.1),
    "poisson": lambda: AutoencoderTransformer(2, hidden_layer_sizes=(5,), loss="poisson"),
    "verbose": lambda: AutoencoderTransformer(2, hidden_layer_sizes=(5,), verbose=1),
    "per-batch callback": lambda: AutoencoderTransformer(
        2, hidden_layer_sizes=(5,), callbacks=[ListensPerBatch()]),
    "user modules": lambda: AutoencoderTransformer(
        2, encoder=torch.nn.Sequential(torch.nn.Linear(4, 2)),
        decoder=torch.nn.Sequential(torch.nn.Linear(2, 4))),
}


@pytest.mark.parametrize("name", FALLBACKS)
def test_variants_fall_back_to_autograd(name, step_calls):
    X = np.round(_data("squared_error", n=30) * 5)  # counts, for poisson
    est = FALLBACKS[name]().set_params(max_iter=2, random_state=0, device="cpu")
    est.fit(X)
    assert step_calls == []
    assert fast_step.plan(est._net) is None
    assert np.isfinite(est.loss_curve_).all()


def test_hooks_and_other_modules_fall_back():
    X = _data("squared_error", n=30)
    net = AutoencoderTransformer(2, hidden_layer_sizes=(5,), max_iter=1,
                                 random_state=0).fit(X)._net
    assert fast_step.plan(net) is not None
    handle = net.module_.code.register_forward_hook(lambda *args: None)
    assert fast_step.plan(net) is None
    handle.remove()
    net.module_.encoder.append(torch.nn.Dropout(0.1))
    assert fast_step.eligible(net) and fast_step.plan(net) is None


def test_distributed_falls_back(world_of_one, step_calls):
    X = _data("squared_error", n=30)
    AutoencoderTransformer(2, hidden_layer_sizes=(5,), max_iter=2, random_state=0,
                           distributed=True).fit(X)
    assert step_calls == []


def test_every_activation_is_covered():
    # The tests above run every activation skae offers through the fast step.
    from skae._modules import ACTIVATIONS as MODULES

    names = {name for name in MODULES if name != "exp"}
    assert names == set(ACTIVATIONS)
    assert {MODULES[name] for name in names} - {torch.nn.Identity} == set(
        fast_step.ACTIVATIONS)

