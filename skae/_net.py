"""The only training loop in skae: one skorch ``NeuralNet`` subclass.

The estimator builds an :class:`AutoencoderNet` inside ``fit`` and keeps it
as a private fitted attribute; it never inherits from skorch. What differs
from a stock skorch net, and why:

* batches are sliced from tensors that already sit on the device, shuffled
  with a permutation drawn from the fit's seeded generator (no per-sample
  ``Dataset.__getitem__``, no ``DataLoader`` collation);
* the per-epoch loss is accumulated on the device and read once per epoch
  (one host sync per epoch instead of one per batch);
* the loss is ``estimator._loss(...)`` so each variant adds its own term, and
  the training input goes through ``estimator._corrupt`` first;
* the gradient of MLP's L2 penalty ``0.5 * alpha * sum ||W||^2 / batch`` is
  added by the optimiser (``weight_decay = alpha / batch`` on a parameter
  group of the weight matrices, set per batch; inside fused Adam's kernel),
  not by autograd through the loss, which only carries the penalty's value
  (as MLP's ``loss_curve_`` does): the same update, without a backward pass
  through the penalty;
* per-batch events (``on_batch_begin``, ``on_batch_end``,
  ``on_grad_computed``) are only dispatched, and per-batch history rows only
  kept, when some callback handles one of them: a step of a small model
  is short enough for that bookkeeping to show, on a GPU especially;
* no hold-out unless early stopping is on, ``verbose=0`` prints nothing, and
  one callback implements scikit-learn MLP's stopping rule, restoring the
  best weights when early stopping is on;
* training faults lose nothing: a non-finite loss raises
  :class:`TrainingDiverged` (with early stopping: the best weights are
  restored and a warning is issued instead), and ``KeyboardInterrupt``
  rolls the module and the optimiser back to the end of the last finished
  epoch, with a warning.
"""

import copy
import math
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from skorch.utils import TeeGenerator


class TrainingDiverged(FloatingPointError):
    """Raised when the training loss stops being finite."""


class _StopTraining(Exception):
    """Raised by the stopping rule to end ``fit_loop`` cleanly."""


class TensorData:
    """Tensors already on the device, optionally restricted to ``indices``."""

    def __init__(self, X, y=None, indices=None):
        self.X, self.y, self.indices = X, y, indices

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)


class BatchIterator:
    """Yield ``(X_batch, y_batch)`` slices of a :class:`TensorData`.

    Without shuffling and without an index subset the batches are views (no
    copy). Otherwise one permutation is drawn per epoch from torch's (forked,
    seeded) generator on the data's device and each batch is gathered with
    one indexing call.
    """

    def __init__(self, data, batch_size, shuffle):
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        X, y, order = self.data.X, self.data.y, self.data.indices
        n, bs = len(self.data), self.batch_size
        if self.shuffle:
            perm = torch.randperm(n, device=X.device)
            order = perm if order is None else order[perm]
        for start in range(0, n, bs):
            if order is None:
                sl = slice(start, start + bs)
                yield X[sl], (None if y is None else y[sl])
            else:
                idx = order[start : start + bs]
                yield X[idx], (None if y is None else y[idx])


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
        row = net.history[-1]
        loss = row["train_loss"]
        what = f"the training loss became {loss} at epoch {row['epoch']}"
        if self.early_stopping:
            score = -row["valid_loss"]
            net.history.record("valid_score", score)
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
                stacklevel=2,
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


def _module_tensors(module):
    return [t.detach() for t in module.state_dict(keep_vars=True).values()]


def _shape(value):
    return value.shape if torch.is_tensor(value) else None


def _copy(state):
    return {k: _clone(v) for k, v in state.items()}


def _clone(value):
    return value.detach().clone() if torch.is_tensor(value) else value


_PER_BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


class AutoencoderNet(NeuralNet):
    """skorch net driven by a skae estimator.

    Parameters beyond :class:`skorch.NeuralNet`'s
    ------------------------------------------------
    estimator : skae estimator
        Supplies ``_loss``, ``_corrupt`` and ``_score_samples_model``.
    shuffle : bool
        Shuffle training batches every epoch.
    validation_fraction : float or None
        Fraction held out for early stopping; ``None`` holds out nothing.
    tol, n_iter_no_change : float, int
        Passed to :class:`StoppingRule`.
    alpha : float
        MLP-style L2 penalty on the weight matrices, applied as the
        optimiser's per-batch ``weight_decay`` (see the module docstring).
    """

    def __init__(
        self,
        module,
        criterion,
        *,
        estimator,
        shuffle=True,
        validation_fraction=None,
        tol=1e-4,
        n_iter_no_change=10,
        alpha=0.0,
        **kwargs,
    ):
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("verbose", 0)
        if alpha:
            # The weight matrices (names ending in 'weight', as
            # Autoencoder.weights) form the first parameter group.
            kwargs.setdefault("optimizer__param_groups", [("*weight", {"weight_decay": 0.0})])
        super().__init__(module, criterion, **kwargs)
        self.estimator = estimator
        self.shuffle = shuffle
        self.validation_fraction = validation_fraction
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.alpha = alpha

    def initialize(self):
        super().initialize()
        # The module and criterion were passed as instances; once they are
        # the fitted ``module_``/``criterion_``, keep only their classes so a
        # pickle does not store the weights twice (skorch pickles ``module_``
        # through its own device-mapping path, apart from ``module``).
        self.module = type(self.module_)
        self.criterion = type(self.criterion_)
        return self

    # -- callbacks ----------------------------------------------------------
    def get_default_callbacks(self):
        callbacks = [
            (
                "stopping",
                StoppingRule(
                    tol=self.tol,
                    n_iter_no_change=self.n_iter_no_change,
                    early_stopping=self.validation_fraction is not None,
                ),
            )
        ]
        if self.verbose:
            callbacks += [
                ("epoch_timer", EpochTimer()),
                ("print_log", PrintLog(keys_ignored=["valid_score"])),
            ]
        return callbacks

    # -- data -------------------------------------------------------------
    def get_split_datasets(self, X, y=None, **fit_params):
        """Training and validation views of the device tensors.

        With early stopping the estimator draws the split (before it
        initialises the module, so that StackedAE's pretraining leaves the
        held-out rows alone) and sets ``_split = (train_rows, valid_rows)``
        for the duration of the call: an attribute, not a fit parameter,
        which scikit-learn's metadata routing would reject.
        """
        if self.validation_fraction is None:
            return TensorData(X, y), None
        train_rows, valid_rows = self._split
        return TensorData(X, y, train_rows), TensorData(X, y, valid_rows)

    def get_iterator(self, dataset, training=False):
        return BatchIterator(dataset, self.batch_size, self.shuffle and training)

    # -- steps --------------------------------------------------------------
    def train_step_single(self, batch, **fit_params):
        x, y = batch
        x_in = self.estimator._corrupt(x)
        output = self.module_(x_in)
        loss = self.estimator._loss(self, x, x_in, y, output)
        loss.backward()
        return {"loss": loss, "y_pred": output}

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        # A flag, not a reference to the group: skorch pickles the
        # optimiser apart from the other attributes, which would split them.
        self._decays = bool(self.alpha) and "weight_decay" in self.optimizer_.param_groups[0]
        return self

    def train_step(self, batch, **fit_params):
        # No optimiser closure: Adam and SGD evaluate the loss once.
        if self._decays:  # MLP's alpha / batch size
            self.optimizer_.param_groups[0]["weight_decay"] = self.alpha / len(batch[0])
        self.optimizer_.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.optimizer_.step()
        return step

    def validation_step(self, batch, **fit_params):
        x, y = batch
        with torch.no_grad():
            scores = self.estimator._score_samples_model(self.module_, x, y)
        return {"loss": -scores.mean(), "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self._set_training(training)
        total, n_seen, n_batches = None, 0, 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[0])
            weighted = step["loss"].detach() * size
            total = weighted if total is None else total + weighted
            n_seen += size
            n_batches += 1
            self.notify("on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_batch_count", n_batches)
        self.history.record(prefix + "_loss", (total / n_seen).item())

    # -- rollback to the last finished epoch ---------------------------------
    def _save_epoch_state(self):
        """Copy what an epoch changes: module parameters and buffers (tied
        weights once) and the optimiser's per-parameter state.

        The copies go into buffers allocated on the first call and reused
        while the structure is unchanged (about three copies of the weights
        with Adam, no allocation per epoch; measured at 0.05-0.4% of an
        epoch's time).
        """
        module = _module_tensors(self.module_)
        optim = list(self.optimizer_.state.items())
        key = (
            [t.shape for t in module],
            [(id(p), [(k, _shape(v)) for k, v in s.items()]) for p, s in optim],
        )
        old = self.__dict__.get("_epoch_state")
        # An interrupt while copying leaves the buffers half-written; the
        # live state is then the finished epoch itself, so it is kept.
        self._epoch_state_ready = False
        with torch.no_grad():
            if old is None or old[0] != key:
                buffers = [t.clone() for t in module], [(p, _copy(s)) for p, s in optim]
            else:
                buffers = old[1]
                for dst, src in zip(buffers[0], module):
                    dst.copy_(src)
                for (_, dst), (_, src) in zip(buffers[1], optim):
                    for k, v in src.items():
                        if torch.is_tensor(v):
                            dst[k].copy_(v)
                        else:
                            dst[k] = v
        self._epoch_state = (key, buffers, len(self.history))
        self._epoch_state_ready = True

    def _restore_epoch_state(self):
        if not self._epoch_state_ready:
            return
        _, (module_saved, optim_saved), n_rows = self._epoch_state
        with torch.no_grad():
            for dst, src in zip(_module_tensors(self.module_), module_saved):
                dst.copy_(src)
        self.optimizer_.state.clear()
        for p, saved in optim_saved:
            self.optimizer_.state[p] = _copy(saved)
        del self.history[n_rows:]

    def initialize_callbacks(self):
        super().initialize_callbacks()
        self._per_batch = any(
            getattr(type(cb), event) is not getattr(Callback, event)
            for _, cb in self.callbacks_
            for event in _PER_BATCH_EVENTS
        )
        return self

    def __deepcopy__(self, memo):
        """Copy in memory, tensors included, without skorch's pickling path.

        skorch's ``__getstate__`` serialises every tensor with ``torch.save``
        so that a pickle can be loaded on another device; a copy within the
        process needs none of that (``partial_fit`` copies the net on every
        call, and that path cost ~10 ms for a small net).
        """
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def notify(self, method_name, **cb_kwargs):
        if method_name in _PER_BATCH_EVENTS and not self.__dict__.get("_per_batch", True):
            return  # no callback listens (and no one reads per-batch history)
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_epoch_end":
            # Every callback has run: the epoch is finished.
            self._save_epoch_state()

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` epochs, stopping early when the rule says.

        As in :meth:`skorch.NeuralNet.partial_fit`, but a stop by
        :class:`StoppingRule` is a normal end of training, and
        ``KeyboardInterrupt`` becomes a warning (as in scikit-learn's MLP):
        the module, the optimiser and the history are rolled back to the end
        of the last finished epoch (to the start of this call if no epoch
        finished), so the model is usable and consistent.
        """
        if not self.initialized_:
            self.initialize()
        self.interrupted_ = False
        self.notify("on_train_begin", X=X, y=y)
        self._save_epoch_state()
        try:
            self.fit_loop(X, y, **fit_params)
        except _StopTraining:
            pass
        except KeyboardInterrupt:
            self.interrupted_ = True
            self._restore_epoch_state()
            warnings.warn(
                "Training interrupted by the user; the model keeps the weights "
                "of the last finished epoch.",
                UserWarning,
                stacklevel=3,
            )
        finally:
            self.__dict__.pop("_epoch_state", None)
            self.__dict__.pop("_epoch_state_ready", None)
        self.notify("on_train_end", X=X, y=y)
        return self
