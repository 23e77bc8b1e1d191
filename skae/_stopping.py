"""scikit-learn MLP's stopping rule as a skorch callback, and its signals."""

import copy
import math
import warnings

from skorch.callbacks import Callback

from ._logging import last_row
from ._warnings import user_stacklevel


class TrainingDiverged(FloatingPointError):
    """Raised when the training loss stops being finite."""


class _StopTraining(Exception):
    """Raised by the stopping rule to end ``fit_loop`` cleanly."""


class StoppingRule(Callback):
    """scikit-learn MLP's ``_update_no_improvement_count``, as a callback.

    An epoch is a miss when the training loss is not below
    ``best_loss - tol`` (or, with early stopping, when the validation score
    is not above ``best_score + tol``); training stops once misses exceed
    ``n_iter_no_change``. With early stopping the best weights are restored
    at the end of training.

    A non-finite training loss (or, with early stopping, validation score)
    raises :class:`TrainingDiverged`; with early stopping and at least one
    finite validation score it instead ends training with a warning, and the
    best weights are restored as usual (``diverged_`` is then True).
    """

    def __init__(self, tol=1e-4, n_iter_no_change=10, early_stopping=False):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping

    def initialize(self):
        self.best_loss_ = math.inf
        self.best_score_ = -math.inf
        self.best_state_ = None
        self.misses_ = 0
        self.stopped_ = False
        self.diverged_ = False
        self.active_ = True
        return self

    def on_train_begin(self, net, **kwargs):
        self.stopped_ = False
        self.diverged_ = False

    def on_epoch_end(self, net, **kwargs):
        row = last_row(net.history)
        loss = row["train_loss"]
        what = f"the training loss became {loss} at epoch {row['epoch']}"
        if self.early_stopping:
            score = -row["valid_loss"]
            row["valid_score"] = score  # History.record, in place
            if not math.isfinite(score) and math.isfinite(loss):
                loss = score
                what = f"the validation score became {score} at epoch {row['epoch']}"
        if not math.isfinite(loss):
            if not (self.early_stopping and self.best_state_ is not None):
                raise TrainingDiverged(what)
            warnings.warn(
                f"Training diverged: {what}; training stopped and the weights "
                f"with the best validation score ({self.best_score_:.6g}) were "
                f"restored. learning_rate_init={getattr(net, 'lr', None)} is "
                "probably too high for this data.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            self.stopped_ = self.diverged_ = True
            raise _StopTraining
        if self.early_stopping:
            improved = score > self.best_score_ + self.tol
            if score > self.best_score_:
                self.best_score_ = score
                self.best_state_ = copy.deepcopy(net.module_.state_dict())
        else:
            improved = loss < self.best_loss_ - self.tol
        self.best_loss_ = min(self.best_loss_, loss)
        self.misses_ = 0 if improved else self.misses_ + 1
        if self.active_ and self.misses_ > self.n_iter_no_change:
            self.stopped_ = True
            raise _StopTraining

    def on_train_end(self, net, **kwargs):
        if self.early_stopping and self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
