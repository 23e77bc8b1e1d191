"""The only training loop in skae: one skorch ``NeuralNet`` subclass.

The estimator builds an :class:`AutoencoderNet` inside ``fit`` and keeps it
as a private fitted attribute; it never inherits from skorch. What differs
from a stock skorch net, and why:

* batches are sliced from tensors that already sit on the device, shuffled
  with a permutation drawn from the fit's seeded generator (no per-sample
  ``Dataset.__getitem__``, no ``DataLoader`` collation);
* the per-epoch loss is accumulated on the device and read once per epoch
  (one host sync per epoch instead of one per batch);
* the loss is ``objective._loss(...)`` so each variant adds its own term, and
  the training input goes through ``objective._corrupt`` first (the
  objective is the estimator, or one pretraining stage of StackedAE);
* the gradient of MLP's L2 penalty ``0.5 * alpha * sum ||W||^2 / batch`` is
  added by the optimiser (``weight_decay = alpha / batch`` on a parameter
  group of the weight matrices, set per batch; inside fused Adam's kernel),
  not by autograd through the loss, which only carries the penalty's value
  (as MLP's ``loss_curve_`` does): the same update, without a backward pass
  through the penalty;
* the plain MLP autoencoder (:class:`~skae._modules.Autoencoder` with the
  plain objective, ``'squared_error'`` or ``'log_loss'``, no per-batch
  listener, one process, ``verbose=0``) trains through
  :class:`skae._fast_step.FastStep`: the forward pass, the loss and the
  gradients by hand, without autograd, in fewer ops (autograd's loss and
  gradients bit for bit; the optimiser step is unchanged). ``train_step`` takes it
  when :func:`skae._fast_step.plan` gives one at the start of a training
  call, autograd otherwise (corruption, contractive, variational, sparsity
  and hashing terms, user and conv modules, per-batch callbacks,
  ``distributed``);
* fused Adam's step calls its kernel directly (:mod:`skae._adam_step`:
  the same update and optimiser state, without ``Adam.step``'s Python),
  unless something wraps or hooks the step;
* the history rows skorch's ``record`` calls would write are written in
  place (``History`` indexing costs microseconds a call, every epoch);
* per-batch events (``on_batch_begin``, ``on_batch_end``,
  ``on_grad_computed``) are only dispatched, and per-batch history rows only
  kept, when some callback handles one of them: a step of a small model
  is short enough for that bookkeeping to show, on a GPU especially;
* no hold-out unless early stopping is on, ``verbose=0`` prints nothing, and
  one callback implements scikit-learn MLP's stopping rule, restoring the
  best weights when early stopping is on;
* with ``distributed=True`` (:mod:`skae._distributed` sets
  ``_data_parallel`` while the net trains) the forward runs through
  DistributedDataParallel on this rank's shard, and the epoch's loss, the
  weight decay's batch size and the VAE's noise variance count every rank;
* training faults lose nothing: a non-finite loss raises
  :class:`TrainingDiverged` (with early stopping: the best weights are
  restored and a warning is issued instead), and ``KeyboardInterrupt``
  rolls the module and the optimiser back to the end of the last finished
  epoch (:mod:`skae._rollback`), with a warning.
"""

import copy
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer
from skorch.utils import TeeGenerator

from ._adam_step import plan as adam_step_plan
from ._batches import BatchIterator, TensorData
from ._fast_step import plan as fast_step_plan
from ._logging import BestFlags, TrainingLog, last_row
from ._rollback import EpochSnapshot
from ._stopping import StoppingRule, _StopTraining
from ._threads import rebalance
from ._warnings import user_stacklevel

_PER_BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


class AutoencoderNet(NeuralNet):
    """skorch net driven by a skae estimator.

    Parameters beyond :class:`skorch.NeuralNet`'s
    ------------------------------------------------
    objective : object
        Supplies ``_loss``, ``_corrupt`` and ``_score_samples_model`` (a skae
        estimator, or one stage of StackedAE's pretraining).
    shuffle : bool
        Shuffle training batches every epoch.
    early_stopping : bool
        Score the held-out rows of :class:`TrainingData` every epoch, stop
        on the validation score and restore the best weights.
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
        objective,
        shuffle=True,
        early_stopping=False,
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
        self.objective = objective
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.alpha = alpha

    def initialize(self):
        # Why: drop the module/criterion instances once fitted (no double pickle).
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
        # Why: MLP's stopping rule always, skae's log only when verbose.
        callbacks = [
            ("best_flags", BestFlags()),
            (
                "stopping",
                StoppingRule(
                    tol=self.tol,
                    n_iter_no_change=self.n_iter_no_change,
                    early_stopping=self.early_stopping,
                ),
            )
        ]
        if self.verbose:
            callbacks += [
                ("epoch_timer", EpochTimer()),
                ("print_log", TrainingLog(verbose=self.verbose)),
            ]
        return callbacks

    # -- data -------------------------------------------------------------
    def get_split_datasets(self, X, y=None, **fit_params):
        # X is a TrainingData: the split was drawn by the fit driver.
        if not self.early_stopping:
            return TensorData(X.X, X.y), None
        return TensorData(X.X, X.y, X.train_rows), TensorData(X.X, X.y, X.valid_rows)

    def get_iterator(self, dataset, training=False):
        # Why: slices of device tensors, no DataLoader collation per sample.
        if self._data_parallel is not None:  # this rank's shard (skae._distributed)
            return self._data_parallel.iterator(dataset, self.batch_size, training, self.shuffle)
        return BatchIterator(dataset, self.batch_size, self.shuffle and training)

    # -- steps --------------------------------------------------------------
    def train_step_single(self, batch, **fit_params):
        # Why: corruption, a tuple output and the variant's own objective.
        x, y = batch
        x_in = self.objective._corrupt(x)
        dp = self._data_parallel
        output = (self.module_ if dp is None else dp.ddp)(x_in)
        loss = self.objective._loss(self, x, x_in, y, output)
        loss.backward()
        return {"loss": loss, "y_pred": output}

    def initialize_optimizer(self, *args, **kwargs):
        # Why: remember whether alpha's decay group exists (see train_step).
        super().initialize_optimizer(*args, **kwargs)
        # A flag, not a reference to the group: skorch pickles the
        # optimiser apart from the other attributes, which would split them.
        self._decays = bool(self.alpha) and "weight_decay" in self.optimizer_.param_groups[0]
        return self

    def train_step(self, batch, **fit_params):
        # Why: MLP's per-batch alpha / batch_size as weight decay, no closure.
        # No optimiser closure: Adam and SGD evaluate the loss once.
        if self._decays:  # MLP's alpha / batch size (all ranks' rows)
            rows = self.global_rows(len(batch[0]))
            self.optimizer_.param_groups[0]["weight_decay"] = self.alpha / rows
        fast = self._fast_step
        if fast is None:
            self.optimizer_.zero_grad(set_to_none=True)
            step = self.train_step_single(batch, **fit_params)
        else:  # the same loss and gradients, without autograd (skae._fast_step)
            loss, output = fast(batch[0])
            step = {"loss": loss, "y_pred": output}
        if self._per_batch:
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
        (self._optimizer_step or self.optimizer_.step)()  # skae._adam_step where it may
        return step

    def validation_step(self, batch, **fit_params):
        # Why: the validation loss is minus the estimator's score_samples.
        x, y = batch
        with torch.no_grad():
            scores = self.objective._score_samples_model(self.module_, x, y)
        return {"loss": -scores.mean(), "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # Why: accumulate the loss on the device, one host sync per epoch.
        if iterator is None:
            return
        rebalance()  # concurrent fits may have started or ended
        self._set_training(training)
        total, n_seen, n_batches = None, 0, 0
        per_batch = self._per_batch
        for batch in iterator:
            if per_batch:
                self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[0])
            weighted = step["loss"].detach() * size
            total = weighted if total is None else total + weighted
            n_seen += size
            n_batches += 1
            if per_batch:
                self.notify("on_batch_end", batch=batch, training=training, **step)
        dp = self._data_parallel
        mean = (total / n_seen).item() if dp is None else dp.epoch_mean(total, n_seen)
        # The row that History.record would write, written in place (its
        # indexing parses the index: about 2 us a call, 9 calls an epoch).
        row = last_row(self.history)
        row[prefix + "_batch_count"] = n_batches
        row[prefix + "_loss"] = mean
        # One summary row under 'batches' per phase (skorch's Checkpoint
        # formats file names from the last batch row).
        row["batches"].append({prefix + "_loss": mean, prefix + "_batch_size": n_seen})

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        # Why: skorch's new row ('batches', then 'epoch'), in one append.
        self.history.append({"batches": [], "epoch": len(self.history) + 1})

    # -- data-parallel training (skae._distributed sets _data_parallel) ------
    _data_parallel = None
    # The hand-written step for this partial_fit call, or None (autograd).
    _fast_step = None
    # Adam's step by its fused kernel for this call (skae._adam_step), or None.
    _optimizer_step = None
    # Whether a callback listens to per-batch events (initialize_callbacks).
    _per_batch = True

    def global_rows(self, n_rows):
        """Rows in this step over all ranks (``n_rows`` of each rank)."""
        dp = self._data_parallel
        return n_rows if dp is None else n_rows * dp.world

    def mean_over_ranks(self, value):
        """``value`` (a tensor) averaged over the ranks; itself in one process."""
        dp = self._data_parallel
        return value if dp is None else dp.mean(value)

    def _set_training(self, training=True):
        # Why: Module.train walks every submodule; skip it when the mode is
        # already set (modes are only ever set on the root, here and in train).
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def initialize_callbacks(self):
        # Why: learn once whether any callback listens to per-batch events.
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
        # Why: skip unheard per-batch events; snapshot each finished epoch.
        if method_name in _PER_BATCH_EVENTS and not self._per_batch:
            return  # no callback listens (and no one reads per-batch history)
        if method_name != "on_epoch_end":
            return super().notify(method_name, **cb_kwargs)
        # A stop (the rule's, or skorch's EarlyStopping, which raises
        # KeyboardInterrupt) waits until every callback saw the epoch:
        # Checkpoint and the log must see the last one too.
        self.on_epoch_end(self, **cb_kwargs)
        stop = None
        for name, cb in self.callbacks_:
            try:
                cb.on_epoch_end(self, **cb_kwargs)
            except _StopTraining as exc:
                stop = stop or exc
            except KeyboardInterrupt:
                if not isinstance(cb, EarlyStopping):
                    raise
                stop, self.stopped_by_ = stop or _StopTraining(), name
                self.stopping_rule.stopped_ = True  # a normal end: no ConvergenceWarning
        if stop is not None:
            raise stop
        # Every callback has run: the epoch is finished.
        self._snapshot.save(self.optimizer_, len(self.history))

    @property
    def stopping_rule(self):
        """The :class:`StoppingRule` callback (its state: best score, stop flags)."""
        return dict(self.callbacks_)["stopping"]

    def fit_epochs(self, data, *, batch_size, epochs, resume):
        """Train on ``data`` (a :class:`TrainingData`) for up to ``epochs`` epochs.

        ``resume`` continues the stopping rule's count (``partial_fit``: one
        epoch a call, never stopped by the rule); otherwise the count starts
        afresh and the rule may end training.
        """
        self.batch_size, self.max_epochs = batch_size, epochs
        if not self.initialized_:
            self.initialize()
        rule = self.stopping_rule
        rule.active_ = not resume
        if not resume:
            rule.misses_ = 0
        return self.partial_fit(data)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # Why: a rule's stop ends training normally; Ctrl-C rolls back an epoch.
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
        self.interrupted_, self.stopped_by_ = False, None
        self.notify("on_train_begin", X=X, y=y)
        self._snapshot = EpochSnapshot(self.module_)
        self._snapshot.save(self.optimizer_, len(self.history))
        try:
            # Decided once per call: callbacks, verbosity and data
            # parallelism are fixed while it trains.
            self._fast_step = fast_step_plan(self)
            self._optimizer_step = adam_step_plan(self.optimizer_)
            self.fit_loop(X, y, **fit_params)
        except _StopTraining:
            pass
        except KeyboardInterrupt:
            self.interrupted_ = True
            self._snapshot.restore(self.module_, self.optimizer_, self.history)
            warnings.warn(
                "Training interrupted by the user; the model keeps the weights "
                "of the last finished epoch.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        finally:
            for name in ("_fast_step", "_optimizer_step", "_snapshot"):
                self.__dict__.pop(name, None)
        self.notify("on_train_end", X=X, y=y)
        return self
