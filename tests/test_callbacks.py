"""skorch's standard callbacks through ``callbacks=``, and saving them."""

import warnings

import numpy as np
import pytest
import torch
from _helpers import fit_quietly
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    GradientNormClipping,
    LoadInitState,
    LRScheduler,
    ProgressBar,
)

from skae import AutoencoderTransformer

CPU = {"device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return rng.normal(size=(120, 8)) @ rng.normal(size=(8, 8))



def test_history_has_the_keys_skorch_callbacks_monitor(X):
    est = fit_quietly(AutoencoderTransformer(max_iter=4, early_stopping=True, **CPU), X)
    rows = est._net.history
    assert all("train_loss_best" in r and "valid_loss_best" in r for r in rows)
    valid = [r["valid_loss"] for r in rows]
    flags = [r["valid_loss_best"] for r in rows]
    assert flags == [v == min(valid[: i + 1]) for i, v in enumerate(valid)]


def test_checkpoint_writes_files_that_load_into_an_equal_module(X, tmp_path):
    cp = Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best")
    est = fit_quietly(
        AutoencoderTransformer(max_iter=6, tol=0.0, early_stopping=True, callbacks=[cp], **CPU),
        X,
    )
    assert (tmp_path / "params.pt").exists() and (tmp_path / "history.json").exists()
    saved = torch.load(tmp_path / "params.pt", weights_only=True)
    # The checkpoint holds the best epoch, whose weights early stopping restored.
    state = est.module_.state_dict()
    assert saved.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(saved[key], state[key])


def test_checkpoint_without_a_hold_out_monitors_the_training_loss(X, tmp_path):
    cp = Checkpoint(dirname=str(tmp_path), monitor="train_loss_best")
    est = fit_quietly(AutoencoderTransformer(max_iter=3, tol=0.0, callbacks=[cp], **CPU), X)
    assert (tmp_path / "params.pt").exists()
    # The last epoch is checkpointed too (the stop waits for every callback).
    assert [r["event_cp"] for r in est._net.history] == [True] * 3


def test_load_init_state_restores_the_checkpoint(X, tmp_path):
    cp = Checkpoint(dirname=str(tmp_path), monitor=None)
    first = fit_quietly(AutoencoderTransformer(max_iter=5, tol=0.0, callbacks=[cp], **CPU), X)
    start = {}

    class Start(Callback):
        def on_train_begin(self, net, **kwargs):
            start.update({k: v.clone() for k, v in net.module_.state_dict().items()})

    cp2 = Checkpoint(dirname=str(tmp_path), monitor=None)
    second = AutoencoderTransformer(
        max_iter=1, callbacks=[LoadInitState(cp2), Start()], random_state=1, device="cpu"
    )
    fit_quietly(second, X)
    # Training starts from the checkpoint's weights, not from the fresh
    # initialisation of random_state=1, and the history continues.
    for key, value in first.module_.state_dict().items():
        torch.testing.assert_close(start[key], value)
    assert len(second._net.history) == 6


def test_lr_scheduler_changes_the_learning_rate(X):
    seen = []

    class Watch(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append(net.optimizer_.param_groups[0]["lr"])

    sched = LRScheduler(policy="StepLR", step_size=2, gamma=0.5)
    fit_quietly(AutoencoderTransformer(max_iter=6, tol=0.0, callbacks=[sched, Watch()], **CPU), X)
    assert seen == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_cosine_schedule_to_zero_pickles_and_saves(X, tmp_path):
    """The image recipe's schedule ends at lr=0 exactly: a fitted model still
    pickles, saves and loads (0 is a rate a schedule sets, not a bad file)."""
    import pickle

    import skae

    sched = LRScheduler(policy="CosineAnnealingLR", T_max=4)
    est = fit_quietly(AutoencoderTransformer(max_iter=4, tol=0.0, callbacks=[sched], **CPU), X)
    assert est._net.optimizer_.param_groups[0]["lr"] == 0.0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X), est.transform(X))
    est.save(tmp_path / "cos.skae")
    np.testing.assert_array_equal(skae.load(tmp_path / "cos.skae").transform(X), est.transform(X))


def test_early_stopping_stops_at_the_expected_epoch(X):
    class Loss(Callback):
        # A validation loss that is best at epoch 3, then worse.
        def on_epoch_end(self, net, **kwargs):
            epoch = len(net.history)
            net.history.record("fake_loss", abs(epoch - 3.0))

    es = EarlyStopping(monitor="fake_loss", patience=2, threshold=0.0, sink=lambda *a: None)
    est = AutoencoderTransformer(max_iter=50, tol=0.0, callbacks=[Loss(), es], **CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither "interrupted" nor ConvergenceWarning
        est.fit(X)
    # Best at 3; epochs 4 and 5 miss; the stop comes at the end of epoch 5.
    assert est.n_iter_ == 5
    assert len(est._net.history) == 5


def test_gradient_norm_clipping_bounds_the_gradient(X):
    norms = []

    class Norm(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad for _, p in named_parameters if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads]))))

    fit_quietly(AutoencoderTransformer(max_iter=2, callbacks=[Norm()], **CPU), X)
    assert max(norms) > 0.5  # unclipped gradients are larger than the bound
    norms.clear()
    clip = GradientNormClipping(gradient_clip_value=0.5)
    fit_quietly(AutoencoderTransformer(max_iter=2, callbacks=[clip, Norm()], **CPU), X)
    assert len(norms) == 2 and max(norms) <= 0.5 + 1e-5


def test_progress_bar_counts_the_batches(X, capsys):
    pytest.importorskip("tqdm")
    est = fit_quietly(
        AutoencoderTransformer(
            max_iter=2, batch_size=30, tol=0.0, callbacks=[ProgressBar()], **CPU
        ),
        X,
    )
    bar = dict(est._net.callbacks_)["ProgressBar"].pbar_
    assert bar.total == bar.n == 4  # 120 rows in batches of 30, every one counted
    assert "0/4" in capsys.readouterr().err  # tqdm's bar, on stderr


# ----------------------------------------------------------------------
# save / load with callbacks
# ----------------------------------------------------------------------
def test_save_stores_skorch_callbacks_and_load_rebuilds_them(X, tmp_path):
    import skae

    callbacks = [
        ("cp", Checkpoint(dirname="ckpt", monitor="train_loss_best")),
        LRScheduler(policy="StepLR", step_size=2, gamma=0.5),
        EarlyStopping(monitor="train_loss", patience=3),
        GradientNormClipping(gradient_clip_value=1.0),
        LoadInitState(Checkpoint(dirname="other")),
        ProgressBar(),
    ]
    est = fit_quietly(AutoencoderTransformer(max_iter=2, callbacks=callbacks[1:4], **CPU), X)
    est.set_params(callbacks=callbacks)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    rebuilt = loaded.callbacks
    assert [type(c[1] if isinstance(c, tuple) else c) for c in rebuilt] == [
        type(c[1] if isinstance(c, tuple) else c) for c in callbacks
    ]
    assert rebuilt[0][0] == "cp" and rebuilt[0][1].get_params() == callbacks[0][1].get_params()
    for old, new in zip(callbacks[1:4], rebuilt[1:4]):
        assert new.get_params() == old.get_params()
    assert rebuilt[4].checkpoint.dirname == "other"
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    # The schedule's learning rate (halved after 2 epochs) is kept.
    assert est._net.optimizer_.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert loaded._net.optimizer_.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_save_names_the_callbacks_it_cannot_store(X, tmp_path):
    est = fit_quietly(AutoencoderTransformer(max_iter=1, **CPU), X)

    class Mine(Callback):
        pass

    cases = [
        (Mine(), "is a .*Mine; .*only skorch's"),
        (EarlyStopping(monitor=lambda net: 0.0), "parameter monitor=.*not plain data"),
        (LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1), "policy='StepLR'"),
        (Checkpoint(dirname=str(tmp_path)), "relative paths"),
    ]
    for cb, match in cases:
        with pytest.raises(ValueError, match=match):
            est.set_params(callbacks=[cb]).save(tmp_path / "m.skae")
    assert not (tmp_path / "m.skae").exists()


def test_load_refuses_callbacks_outside_the_allow_list():
    from skae._callback_codec import decode_callbacks

    bad = [
        ([{"class": "os.system", "params": {}}], "not one of"),
        ([{"class": "Checkpoint", "params": {"dirname": "/etc"}}], "relative paths"),
        ([{"class": "Checkpoint", "params": {"dirname": "../up"}}], "relative paths"),
        ([{"class": "LRScheduler", "params": {"policy": "sys"}}], "not a torch"),
        ([{"class": "EarlyStopping", "params": {"nope": 1}}], "no parameter 'nope'"),
        ([{"class": "LoadInitState", "params": {"checkpoint": {"class": "EpochTimer",
                                                               "params": {}}}}], "Checkpoint"),
    ]
    for data, match in bad:
        with pytest.raises(ValueError, match=match):
            decode_callbacks(data, "'f.skae'")
