"""MLP's stopping rule as a skorch callback, against a stand-in net."""

import math

import pytest
import torch

from skae._stopping import StoppingRule, TrainingDiverged, _StopTraining


class _History(list):
    def record(self, key, value):
        self[-1][key] = value


class _FakeNet:
    """Just enough of a skorch net for the stopping rule."""

    lr = 0.1

    def __init__(self):
        self.history = _History()
        self.module_ = torch.nn.Linear(1, 1)


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


def test_non_finite_validation_score_counts_as_divergence():
    rule = StoppingRule(early_stopping=True).initialize()
    net = _FakeNet()
    net.history.append({"epoch": 1, "train_loss": 1.0, "valid_loss": 2.0})
    rule.on_epoch_end(net)
    net.history.append({"epoch": 2, "train_loss": 0.9, "valid_loss": math.inf})
    with pytest.warns(UserWarning, match="validation score became -inf at epoch 2"):
        with pytest.raises(_StopTraining):
            rule.on_epoch_end(net)
    assert rule.diverged_ and rule.stopped_ and rule.best_score_ == -2.0
    # Nothing finite to fall back on: an error, as without early stopping.
    rule = StoppingRule(early_stopping=True).initialize()
    net = _FakeNet()
    net.history.append({"epoch": 1, "train_loss": 1.0, "valid_loss": math.nan})
    with pytest.raises(TrainingDiverged, match="validation score became nan"):
        rule.on_epoch_end(net)
