import math

import pytest
import torch

from skae._batches import BatchIterator, TensorData
from skae._stopping import StoppingRule


def test_batches_cover_every_sample_once():
    X = torch.arange(23, dtype=torch.float32).reshape(-1, 1)
    torch.manual_seed(0)
    batches = list(BatchIterator(TensorData(X), batch_size=5, shuffle=True))
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([b[0] for b in batches]).ravel()
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))  # shuffled
    assert len(BatchIterator(TensorData(X), 5, True)) == 5


def test_unshuffled_batches_are_views():
    X = torch.randn(10, 3)
    (xb, yb), *_ = BatchIterator(TensorData(X), batch_size=4, shuffle=False)
    assert yb is None
    assert xb.data_ptr() == X.data_ptr()


def test_index_subset_and_targets():
    X = torch.arange(10, dtype=torch.float32).reshape(-1, 1)
    y = torch.arange(10)
    idx = torch.tensor([1, 3, 5, 7])
    data = TensorData(X, y, idx)
    assert len(data) == 4
    torch.manual_seed(1)
    out = list(BatchIterator(data, batch_size=3, shuffle=True))
    xs = torch.cat([b[0] for b in out]).ravel()
    ys = torch.cat([b[1] for b in out])
    assert sorted(xs.tolist()) == [1.0, 3.0, 5.0, 7.0]
    assert torch.equal(xs.long(), ys)


class _FakeNet:
    """Just enough of a skorch net for the stopping rule."""

    def __init__(self):
        self.history = _History()
        self.module_ = torch.nn.Linear(1, 1)


class _History(list):
    def record(self, key, value):
        self[-1][key] = value


def _run(rule, losses, valid=None):
    net = _FakeNet()
    rule.initialize()
    stopped_at = None
    for epoch, loss in enumerate(losses, start=1):
        row = {"epoch": epoch, "train_loss": loss}
        if valid is not None:
            row["valid_loss"] = valid[epoch - 1]
        net.history.append(row)
        try:
            rule.on_epoch_end(net)
        except Exception as exc:  # _StopTraining or TrainingDiverged
            stopped_at = (epoch, type(exc).__name__)
            break
    return stopped_at, rule


def test_stopping_rule_mirrors_mlp():
    # Loss plateaus from epoch 3: misses at 4, 5, 6 -> stop once misses > 2.
    stopped, rule = _run(StoppingRule(tol=0.1, n_iter_no_change=2), [5, 4, 3, 3, 3, 3, 3])
    assert stopped == (6, "_StopTraining")
    assert rule.best_loss_ == 3


def test_stopping_rule_with_validation_restores_best():
    valid = [5.0, 4.0, 4.5, 4.6, 4.7, 4.8]
    stopped, rule = _run(
        StoppingRule(tol=0.0, n_iter_no_change=2, early_stopping=True),
        [1.0] * 6,
        valid=valid,
    )
    assert stopped == (5, "_StopTraining")
    assert rule.best_score_ == -4.0
    assert rule.best_state_ is not None


def test_stopping_rule_raises_on_nan():
    stopped, _ = _run(StoppingRule(), [1.0, math.nan])
    assert stopped == (2, "TrainingDiverged")


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_stopping_rule_raises_on_inf(value):
    stopped, _ = _run(StoppingRule(), [value])
    assert stopped == (1, "TrainingDiverged")
