"""skae._adam_step: Adam(fused=True)'s update by its kernel, bit for bit."""

import copy
import io
import warnings

import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer, DenoisingAE, _adam_step, _net
from skae._adam_step import AdamStep, plan

SHAPES = [(7, 4), (7,), (2, 7), (2,), (4, 2), (4,)]


def _model(seed=0, **adam):
    """Parameters in two groups (weights decayed, as skae's alpha) and Adam."""
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in SHAPES]
    groups = [
        {"params": [p for p in params if p.dim() > 1], "weight_decay": 0.0},
        {"params": [p for p in params if p.dim() == 1]},
    ]
    return params, torch.optim.Adam(groups, lr=1e-2, fused=True, **adam)


def _grads(params, step, fresh):
    """Deterministic gradients; ``fresh``: new tensors (as autograd after
    ``zero_grad(set_to_none=True)``), else written into the same ones."""
    g = torch.Generator().manual_seed(1000 + step)
    for p in params:
        value = torch.randn(p.shape, generator=g)
        if fresh or p.grad is None:
            p.grad = value
        else:
            p.grad.copy_(value)


def _twins(**adam):
    """Two identical models: the reference Adam and one stepped by its plan."""
    pa, ref = _model(**adam)
    pb, opt = _model(**adam)
    return pa, ref, pb, opt, plan(opt)


def _step_both(pa, ref, pb, step, i, fresh):
    """Step ``i``'s gradients into both models, then one step of each."""
    _grads(pa, i, fresh)
    _grads(pb, i, fresh)
    ref.step()
    step()


def _assert_same(params_a, opt_a, params_b, opt_b):
    for p, q in zip(params_a, params_b, strict=True):
        assert torch.equal(p, q)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        a, b = sa["state"][k], sb["state"][k]
        assert list(a) == list(b)  # the same entries in the same order
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
            assert torch.equal(a[name], b[name])


@pytest.mark.parametrize("fresh", [False, True], ids=["same grads", "new grads"])
@pytest.mark.parametrize(
    "adam",
    [{}, {"amsgrad": True}, {"maximize": True}, {"decoupled_weight_decay": True},
     {"betas": (0.8, 0.99), "eps": 1e-6}],
    ids=["default", "amsgrad", "maximize", "adamw", "betas"],
)
def test_steps_equal_fused_adam_bit_for_bit(adam, fresh):
    # The reference is torch.optim.Adam(fused=True).step itself; the decay
    # and the learning rate change between steps, as skae and a scheduler do.
    pa, ref, pb, opt, step = _twins(**adam)
    assert isinstance(step, AdamStep)
    for i in range(25):
        for o in (ref, opt):
            o.param_groups[0]["weight_decay"] = 1e-3 / (10 + i % 3)
            o.param_groups[1]["lr"] = 1e-2 if i < 12 else 3e-3
        _step_both(pa, ref, pb, step, i, fresh)
    _assert_same(pa, ref, pb, opt)
    assert opt.state[pb[0]]["step"].item() == 25


def test_state_saved_and_loaded_as_adam_s():
    # The optimiser is untouched: its state_dict saves, loads into a fresh
    # Adam and trains on exactly as the reference does.
    pa, ref, pb, opt, step = _twins()
    for i in range(5):
        _step_both(pa, ref, pb, step, i, False)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    pc, loaded = _model()
    with torch.no_grad():
        for p, q in zip(pc, pb):
            p.copy_(q)
    loaded.load_state_dict(torch.load(buf))
    # The same AdamStep notices the new state of `opt` after a load too
    # (a copy: Adam.load_state_dict keeps the tensors it is given).
    opt.load_state_dict(copy.deepcopy(loaded.state_dict()))
    step_c = plan(loaded)
    for i in range(5, 10):
        for ps in (pa, pb, pc):
            _grads(ps, i, False)
        ref.step(), step(), step_c()
    _assert_same(pa, ref, pb, opt)
    _assert_same(pa, ref, pc, loaded)


def test_a_missing_gradient_goes_through_adam():
    # A parameter without a gradient is skipped by Adam (its state is not
    # created or advanced); the step hands such a step to Adam.step.
    pa, ref, pb, opt, step = _twins()
    for i in range(6):
        _grads(pa, i, True), _grads(pb, i, True)
        if i in (2, 3):
            pa[1].grad = pb[1].grad = None
        ref.step(), step()
    _assert_same(pa, ref, pb, opt)


def test_plan_declines_what_it_cannot_copy():
    params, _ = _model()
    assert plan(torch.optim.Adam(params)) is None  # not fused
    assert plan(torch.optim.SGD(params, lr=0.1)) is None
    assert plan(torch.optim.AdamW(params, fused=True)) is None  # another class
    assert plan(torch.optim.Adam(params, lr=torch.tensor(0.01), fused=True)) is None
    hooked = torch.optim.Adam(params, fused=True)
    handle = hooked.register_step_pre_hook(lambda *a: None)
    assert plan(hooked) is None
    handle.remove()
    assert plan(hooked) is not None
    scheduled = torch.optim.Adam(params, fused=True)
    torch.optim.lr_scheduler.StepLR(scheduled, step_size=1)  # counts step calls
    assert plan(scheduled) is None


def test_plan_declines_without_the_private_kernel(monkeypatch):
    """A torch that renames its private fused kernel keeps Adam.step."""
    params, _ = _model()
    opt = torch.optim.Adam(params, fused=True)
    assert plan(opt) is not None
    monkeypatch.delattr(torch, "_fused_adam_")
    assert plan(opt) is None


def _fit(cls, X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(random_state=0, **params).fit(X)


@pytest.mark.parametrize(
    "cls, params",
    [(AutoencoderTransformer, {"max_iter": 8}),
     (AutoencoderTransformer, {"max_iter": 5, "alpha": 0.01, "batch_size": 16}),
     (DenoisingAE, {"max_iter": 5})],
    ids=["fast step", "alpha, batches", "autograd"],
)
def test_fits_use_it_and_equal_adam_step_fits(monkeypatch, cls, params):
    # Both training steps (hand-written and autograd) take the kernel call,
    # and the weights and the optimiser state are Adam.step's bit for bit.
    X = np.random.RandomState(0).rand(40, 5)
    calls = []
    original = AdamStep.__call__
    monkeypatch.setattr(AdamStep, "__call__", lambda self: calls.append(1) or original(self))
    fast = _fit(cls, X, **params)
    assert len(calls) == fast.n_iter_ * -(-40 // params.get("batch_size", 40))
    monkeypatch.setattr(_net, "adam_step_plan", lambda opt: None)
    slow = _fit(cls, X, **params)
    assert len(calls) == fast.n_iter_ * -(-40 // params.get("batch_size", 40))
    _assert_same(list(fast.module_.parameters()), fast._net.optimizer_,
                 list(slow.module_.parameters()), slow._net.optimizer_)
    assert fast.loss_curve_ == slow.loss_curve_


def test_callbacks_with_step_hooks_keep_adam_step(monkeypatch):
    # An LR scheduler (skorch's callback wraps the optimiser's step) makes
    # the net keep Adam.step.
    from skorch.callbacks import LRScheduler

    X = np.random.RandomState(0).rand(30, 4)
    plans = []
    monkeypatch.setattr(_net, "adam_step_plan", lambda opt: plans.append(plan(opt)))
    _fit(AutoencoderTransformer, X, max_iter=3,
         callbacks=[LRScheduler(policy="StepLR", step_size=1)])
    assert plans == [None]
    assert _adam_step.plan is plan
