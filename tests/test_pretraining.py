"""Greedy layer-wise pretraining: one-layer stages trained by the one fit driver."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skae import StackedAE

CPU = dict(device="cpu", random_state=0)


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def _record_stages(monkeypatch):
    """Record ``(net, data)`` of every pretraining stage's training run."""
    from skae import _pretraining, _training

    stages, train = [], _training.train

    def recording_train(net, data, **kw):
        if isinstance(net.objective, _pretraining.StageObjective):
            stages.append((net, data))
        return train(net, data, **kw)

    monkeypatch.setattr(_training, "train", recording_train)
    return stages


def test_unrolled_network_holds_the_pretrained_weights(split, monkeypatch):
    """Encoder layer k is stage k's encoder; decoder layers are the stages'
    decoders in reverse order; each stage trains on the codes below it."""
    X_train, _, _, _ = split
    initial = {}
    stages = _record_stages(monkeypatch)

    class Snapshot(Callback):
        def on_train_begin(self, net, **kwargs):
            initial.update({k: v.clone() for k, v in net.module_.state_dict().items()})

    ae = StackedAE(
        4, hidden_layer_sizes=(16, 8), pretrain_max_iter=3, max_iter=1,
        callbacks=[Snapshot()], **CPU,
    ).fit(X_train)
    assert [net.module_.code.out_features for net, _ in stages] == [16, 8, 4]
    assert [data.X.shape[1] for _, data in stages] == [64, 16, 8]
    # Stage 1 sees the estimator's normalised data; stage k+1 stage k's codes.
    normalised = (X_train - ae.mean_) / ae.scale_
    assert_allclose(stages[0][1].X.numpy(), normalised, rtol=1e-5, atol=1e-5)
    for (below, data_below), (_, data) in zip(stages[:-1], stages[1:]):
        with torch.no_grad():
            assert_array_equal(data.X.numpy(), below.module_.encode(data_below.X).numpy())
    decoders = ["decoder.4", "decoder.2", "decoder.0"]  # 16->64, 8->16, 4->8
    encoders = ["encoder.0", "encoder.2", "code"]
    for (net, _), enc, dec in zip(stages, encoders, decoders):
        stage = net.module_.state_dict()
        for name in ("weight", "bias"):
            assert_array_equal(initial[f"{enc}.{name}"], stage[f"code.{name}"])
            assert_array_equal(initial[f"{dec}.{name}"], stage[f"decoder.0.{name}"])


def test_early_stopping_holds_its_validation_rows_out_of_pretraining(split, monkeypatch):
    """The validation rows that early stopping scores are never trained on,
    not even by the greedy pretraining that precedes the fine-tuning."""
    from skae import _batches

    X_train, _, _, _ = split
    X = X_train[:300].astype(np.float32)
    stages = _record_stages(monkeypatch)
    trained_rows = []
    iterate = _batches.BatchIterator.__iter__

    def recording_iter(self):
        for batch in iterate(self):
            if self.shuffle:  # training batches (validation is not shuffled)
                trained_rows.append({tuple(r) for r in batch[0].tolist()})
            yield batch

    monkeypatch.setattr(_batches.BatchIterator, "__iter__", recording_iter)
    est = StackedAE(
        4, hidden_layer_sizes=(16,), early_stopping=True, validation_fraction=0.2,
        pretrain_max_iter=2, max_iter=3, random_state=0, device="cpu",
    ).fit(X)
    assert len(stages) == 2
    train_rows, valid_rows = stages[0][1].train_rows.numpy(), stages[0][1].valid_rows.numpy()
    assert len(valid_rows) == 60 and len(set(train_rows) | set(valid_rows)) == 300
    for _, data in stages:  # every stage: the fine-tuning's split
        assert_array_equal(data.train_rows.numpy(), train_rows)
        assert_array_equal(data.valid_rows.numpy(), valid_rows)
    X_norm = ((torch.from_numpy(X) - torch.tensor(est.mean_, dtype=torch.float32))
              / torch.tensor(est.scale_, dtype=torch.float32)).numpy()
    # The first stage's training batches hold only the training rows.
    first = stages[0][1].X.numpy()
    assert_array_equal(first, X_norm)
    held_out = {tuple(r) for r in first[valid_rows].tolist()}
    n_first = 2 * -(-len(train_rows) // est.batch_size_)  # 2 epochs of batches
    seen = set().union(*trained_rows[:n_first])
    assert seen == {tuple(r) for r in first[train_rows].tolist()}
    assert not (seen & held_out)


def test_denoising_layers(split, monkeypatch):
    X_train, X_test, _, _ = split
    common = dict(
        hidden_layer_sizes=(32,), pretrain_max_iter=8, max_iter=2, tol=0.0, **CPU
    )
    clean = StackedAE(8, **common).fit(X_train)
    recorded = _record_stages(monkeypatch)
    masked = StackedAE(8, noise="masking", noise_level=0.3, **common).fit(X_train)
    # Rebuilding what the noise destroyed is harder: measured last-epoch
    # losses of the first layer 54.4 (clean) and 65.5 (30% masked).
    first_layer = [m.pretrain_loss_curves_[0][-1] for m in (clean, masked)]
    assert first_layer[1] > 1.1 * first_layer[0]
    # Every stage is denoising; the first masks entries to 0 in the units
    # of X (a missing pixel), as DenoisingAE does, not to 0 after scaling.
    stages = [net.objective for net, _ in recorded]
    assert [(s.noise, s.noise_level) for s in stages] == [("masking", 0.3)] * 2
    torch.manual_seed(0)
    x = torch.tensor((X_train[:50] - masked.mean_) / masked.scale_, dtype=torch.float32)
    corrupted = stages[0]._corrupt(x).numpy() * masked.scale_ + masked.mean_
    hit = ~np.isclose(corrupted, X_train[:50], atol=1e-4)
    assert 0.25 < hit[X_train[:50] != 0].mean() < 0.35  # of the nonzero pixels
    assert_allclose(corrupted[hit], 0.0, atol=1e-4)
    again = StackedAE(8, noise="masking", noise_level=0.3, **common).fit(X_train)
    assert_array_equal(masked.transform(X_test), again.transform(X_test))


def test_interrupt_during_pretraining_stops_the_whole_fit(monkeypatch):
    """Ctrl-C in a pretraining stage aborts fit and leaves the estimator as it was."""
    from sklearn.datasets import load_digits

    from skae import _pretraining

    X, _ = load_digits(return_X_y=True)
    calls = {"n": 0}
    original = _pretraining.StageObjective._corrupt

    def interrupt_in_second_layer(self, x):
        if x.shape[1] == 16:  # the second stage's input width
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, x)

    monkeypatch.setattr(_pretraining.StageObjective, "_corrupt", interrupt_in_second_layer)
    est = StackedAE(4, hidden_layer_sizes=(16,), pretrain_max_iter=2, max_iter=2,
                    random_state=0, device="cpu")
    with pytest.warns(UserWarning, match="interrupted"), pytest.raises(KeyboardInterrupt):
        est.fit(X[:200])
    assert calls["n"] > 0  # the first stage did train
    assert not hasattr(est, "module_") and not hasattr(est, "pretrain_loss_curves_")
