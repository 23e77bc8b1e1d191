"""The fit driver: everything that touches tensors and the net during fit.

An estimator's ``fit`` validates its input and settings, then hands over to
this module: one seeded scope (:func:`seeded`), one float32 copy of the data
on the device (:func:`device_tensor`), the early-stopping split
(:func:`draw_split`), a fresh or resumed net (:func:`make_net`,
:func:`resume_net`), and :func:`train`, which runs the epochs and turns
training faults into clear errors. StackedAE's greedy pretraining trains its
one-layer stages through the same functions.
"""

import copy

import numpy as np
import torch

from . import _distributed
from ._batches import TrainingData
from ._faults import check_finite_weights, check_training_scores
from ._losses import ReconstructionLoss
from ._net import AutoencoderNet
from ._rng import current, fit_generators
from ._validation import fused_adam_supported


def seeded(seed, device):
    """Run the body with the fit's own torch generators, seeded with ``seed``.

    Weight initialisation, shuffling, the split and training noise all draw
    from them (see :mod:`skae._rng`); torch's global generator, shared by
    every thread and the user's, is never touched.
    """
    return fit_generators(seed)


def draw_seed(random_state):
    """One int seed for torch from the estimator's RandomState."""
    return int(random_state.randint(np.iinfo(np.int32).max))


def device_tensor(X, device, owned=False):
    """The one float32 copy of X on ``device``, normalised in place later.

    On the CPU an ``owned`` float32 array (one that validation just made and
    nothing else references) is that copy already.
    """
    if owned and X.dtype == np.float32 and torch.device(device).type == "cpu":
        return torch.from_numpy(X)
    return torch.tensor(X, dtype=torch.float32, device=device)


def draw_split(n_samples, n_valid, device):
    """``(train_rows, valid_rows)`` index tensors, from torch's generator."""
    perm = torch.randperm(n_samples, device=device, generator=current(device))
    return perm[n_valid:], perm[:n_valid]


def training_data(X_t, y_t=None, split=None):
    """A :class:`TrainingData` for the net (``split`` from :func:`draw_split`)."""
    train_rows, valid_rows = split if split is not None else (None, None)
    return TrainingData(X_t, y_t, train_rows, valid_rows)


def make_net(module, objective, est, device, loss, output_activation, callbacks=None):
    """A fresh :class:`AutoencoderNet` for ``module``.

    ``est`` supplies the optimisation hyperparameters (``solver``,
    ``learning_rate_init``, ``shuffle``, ``early_stopping``, ``tol``,
    ``n_iter_no_change``, ``alpha``, ``verbose``); ``objective`` the loss,
    corruption and validation score; ``loss`` and ``output_activation`` the
    skorch criterion.
    """
    optimizer = torch.optim.Adam if est.solver == "adam" else torch.optim.SGD
    opt_kwargs = {}
    if est.solver == "adam" and fused_adam_supported(device):
        opt_kwargs = {"optimizer__fused": True}
    if est.solver == "sgd":
        opt_kwargs = {"optimizer__momentum": 0.9, "optimizer__nesterov": True}
    return AutoencoderNet(
        module,
        ReconstructionLoss(loss, output_activation),
        objective=objective,
        optimizer=optimizer,
        lr=est.learning_rate_init,
        shuffle=est.shuffle,
        early_stopping=est.early_stopping,
        tol=est.tol,
        n_iter_no_change=est.n_iter_no_change,
        alpha=est.alpha,
        callbacks=list(callbacks) if callbacks else None,
        verbose=est.verbose if _distributed.is_lead() else 0,
        device=device,
        **opt_kwargs,
    )


def resume_net(net, objective):
    """A copy of a fitted net to continue training on (``partial_fit``).

    Training a copy means a failed call changes nothing. The history only
    grows: it is shared, not copied (a copy per call would make a stream of
    n calls cost O(n^2)), and :func:`train` cuts it back if the call fails.
    """
    history = net.history
    new = copy.deepcopy(net, memo={id(objective): objective, id(history): history})
    if new.early_stopping:  # fitted with early stopping: partial_fit holds nothing out
        new.early_stopping = False
        new.stopping_rule.early_stopping = False
        new.stopping_rule.best_state_ = None
    return new


def train(net, data, *, batch_size, epochs, resume, learning_rate):
    """Run up to ``epochs`` epochs of ``net`` on ``data``.

    Returns the number of history rows before this run (the new rows are
    this run's). On failure the history is cut back to that length (it may
    be shared with the estimator's previous net) and a diverged loss becomes
    a ValueError that names the learning rate.
    """
    if not net.initialized_:
        net.initialize()
    n_before = len(net.history)
    try:
        with _distributed.data_parallel(net):
            net.fit_epochs(data, batch_size=batch_size, epochs=epochs, resume=resume)
        check_finite_weights(net.module_)
        if getattr(net.objective, "_check_training_scores", False):
            check_training_scores(net, data)
    except BaseException as exc:
        del net.history[n_before:]
        if not isinstance(exc, FloatingPointError):
            raise
        raise ValueError(
            f"Training diverged: {exc}. The learning rate "
            f"learning_rate_init={learning_rate} is probably too "
            "high for this data; lower it (or scale the input)."
        ) from None
    net.module_.eval()
    return n_before
