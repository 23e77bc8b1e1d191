"""What a fit tells the user, and the history rows skorch's callbacks expect.

:class:`BestFlags` records ``train_loss_best`` (and, with a hold-out,
``valid_loss_best``) every epoch, as skorch's default ``PassthroughScoring``
callbacks do, so that skorch's ``Checkpoint``, ``EarlyStopping`` and
``LRScheduler`` find the keys they monitor.

:class:`TrainingLog` is the ``verbose`` display:

* ``verbose=1``: progress over epochs with the elapsed time, an upper bound
  on the time left (``max_iter`` epochs at the mean epoch time so far: the
  stopping rule may end training sooner) and the best epoch so far; a tty
  gets one updating line, anything else (a file, a notebook's captured
  stdout, a CI log) a plain line at every tenth of ``max_iter``. One summary
  line at the end: epochs run, the best epoch and its error, the time, and
  why training stopped.
* ``verbose>=2``: a table, one row per epoch, ``*`` on the best epochs.

Columns (all per sample, averaged over the epoch's batches while the weights
change):

``train_loss``
    The training objective, in the units the network trains in
    (normalised data), penalties included; what the stopping rule watches.
``train_error``
    The training reconstruction error in the units of ``score``: minus
    ``score_samples`` of the training batches as they were trained on (for
    ``loss='squared_error'`` the sum of squared errors over features in the
    units of X; for ``'log_loss'`` the summed binary cross-entropy).
``train_rec``, ``train_kl`` (VariationalAE)
    ``-E_q[log p(x|z)]`` and ``KL(q(z|x) || N(0, I))`` in nats; their sum
    is minus the training ELBO (``valid_loss``'s quantity).
``train_task`` (StackedAE, supervised fine-tuning)
    The supervised loss on the code (cross-entropy or NCA error).
``valid_loss``
    Minus ``score`` on the held-out rows (``early_stopping=True`` only).

``partial_fit`` (a one-epoch run) prints one line a call. In a data-parallel fit only rank 0
prints, and the ``train_*`` parts other than ``train_loss`` are its own
rows' (``train_loss`` and ``valid_loss`` are averaged over the ranks).
"""

import math
import sys
import time

import torch
from skorch.callbacks import Callback


class LossParts:
    """Per-epoch sums of the per-sample terms the objective reports.

    The objective adds each training batch's terms (device tensors, no host
    sync); :meth:`pop` reads the epoch's means once and starts afresh.
    """

    def __init__(self):
        self.sums, self.n = {}, 0

    def add(self, parts, n):
        with torch.no_grad():
            for key, value in parts.items():
                total = value.detach().sum()
                self.sums[key] = total if key not in self.sums else self.sums[key] + total
        self.n += n

    def pop(self):
        means = {k: float(v) / self.n for k, v in self.sums.items()} if self.n else {}
        self.sums, self.n = {}, 0
        return means


class BestFlags(Callback):
    """Record ``train_loss_best`` / ``valid_loss_best`` as skorch does."""

    def initialize(self):
        self.best_ = {}
        return self

    def on_epoch_end(self, net, **kwargs):
        row = last_row(net.history)
        for key in ("train_loss", "valid_loss"):
            if key in row:
                value = row[key]
                best = value < self.best_.get(key, math.inf)
                if best:
                    self.best_[key] = value
                row[key + "_best"] = bool(best)  # History.record, in place


def last_row(history):
    """``history[-1]``, the current epoch's row, without History's index
    parsing (about 2 us a call: a cost every epoch of a small network)."""
    return list.__getitem__(history, -1)


def _clock(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:d}:{rest % 60:02d}"


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_COLUMNS = ("train_loss", "train_error", "train_rec", "train_kl", "train_task", "valid_loss")


class TrainingLog(Callback):
    """The ``verbose`` display of a fit (see the module docstring).

    Parameters
    ----------
    verbose : int
        1: progress and a summary; 2 or more: one table row per epoch.
    stream : file-like or None
        Where to write (None: ``sys.stdout`` at the time of writing).
    """

    def __init__(self, verbose=1, stream=None):
        self.verbose = verbose
        self.stream = stream

    def _write(self, text, end="\n"):
        out = self.stream if self.stream is not None else sys.stdout
        out.write(text + end)
        out.flush()

    def _tty(self):
        out = self.stream if self.stream is not None else sys.stdout
        return bool(getattr(out, "isatty", lambda: False)())

    def on_train_begin(self, net, **kwargs):
        net.loss_parts_ = LossParts()
        self.start_ = time.perf_counter()
        self.first_row_ = len(net.history)
        self.columns_ = None
        self.line_open_ = False
        self.next_mark_ = 0.1

    def _monitor(self, row):
        return "valid_loss" if "valid_loss" in row else "train_loss"

    def _best_row(self, net):
        rows = net.history[self.first_row_ :]
        if not rows:
            return None
        key = self._monitor(rows[-1])
        flagged = [r for r in rows if r.get(key + "_best")]
        return flagged[-1] if flagged else min(rows, key=lambda r: r[key])

    def _best_text(self, row):
        key = "valid_loss" if "valid_loss" in row else (
            "train_error" if "train_error" in row else "train_loss"
        )
        return f"best {key} {_fmt(row[key])} at epoch {row['epoch']}"

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key, value in net.loss_parts_.pop().items():
            net.history.record(key, value)
        if self._incremental(net):
            return  # partial_fit: one line at the end of the call
        if self.verbose >= 2:
            self._table_row(net, row)
        else:
            self._progress(net, row)

    def _incremental(self, net):
        # partial_fit (and any one-epoch run): one line, no progress display.
        rule = dict(net.callbacks_).get("stopping")
        return net.max_epochs == 1 or (rule is not None and not rule.active_)

    def _table_row(self, net, row):
        if self.columns_ is None:
            self.columns_ = [c for c in _COLUMNS if c in row]
            self._write("  ".join(["epoch"] + [f"{c:>11}" for c in self.columns_] + ["   dur"]))
        key = self._monitor(row)
        mark = "*" if row.get(key + "_best") else " "
        cells = [f"{row['epoch']:>5}"] + [f"{_fmt(row[c]):>11}" for c in self.columns_]
        self._write("  ".join(cells) + f" {mark}{row.get('dur', 0.0):5.2f}s")

    def _progress(self, net, row):
        epoch = len(net.history) - self.first_row_
        total = max(int(net.max_epochs), 1)
        elapsed = time.perf_counter() - self.start_
        left = elapsed / epoch * (total - epoch)
        best = self._best_row(net)
        text = (
            f"epoch {epoch}/{total}  {self._best_text(best)}  "
            f"{_clock(elapsed)} elapsed, at most {_clock(left)} left"
        )
        if self._tty():
            self._write("\r" + text + "\x1b[K", end="")
            self.line_open_ = True
        elif epoch / total >= self.next_mark_ - 1e-9 or epoch == total:
            self._write(text)
            while self.next_mark_ <= epoch / total + 1e-9:
                self.next_mark_ += 0.1

    def on_train_end(self, net, **kwargs):
        if self.line_open_:
            self._write("")
        n_epochs = len(net.history) - self.first_row_
        best = self._best_row(net)
        elapsed = _clock(time.perf_counter() - self.start_)
        if self._incremental(net) and n_epochs:
            row = net.history[-1]
            cells = "  ".join(f"{c} {_fmt(row[c])}" for c in _COLUMNS if c in row)
            self._write(f"epoch {len(net.history)}: {cells} ({elapsed})")
            return
        if best is None:
            self._write(f"No epoch finished ({elapsed}); {self._reason(net, 0)}.")
            return
        self._write(
            f"{n_epochs} epoch{'s' if n_epochs != 1 else ''} in {elapsed}; "
            f"{self._best_text(best)}; {self._reason(net, n_epochs)}."
        )

    def _reason(self, net, n_epochs):
        rule = dict(net.callbacks_).get("stopping")
        if getattr(net, "interrupted_", False):
            return "interrupted (Ctrl-C): the weights of the last finished epoch are kept"
        if rule is not None and rule.diverged_:
            return "stopped: the loss diverged (best weights restored)"
        if getattr(net, "stopped_by_", None):
            return f"stopped by the callback {net.stopped_by_}"
        if rule is not None and rule.stopped_:
            what = "validation score" if rule.early_stopping else "training loss"
            extra = "; best weights restored" if rule.early_stopping else ""
            return (
                f"stopped: the {what} did not improve by tol={rule.tol:g} for "
                f"{rule.n_iter_no_change} epochs{extra}"
            )
        return f"max_iter={net.max_epochs} epochs reached"
