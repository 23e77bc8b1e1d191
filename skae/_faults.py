"""What a fit guarantees when it fails: nothing changed, autograd as it was.

:func:`fit_guard` wraps every ``fit`` / ``partial_fit``: a call that raises
(an error, a Ctrl-C outside the epoch loop) leaves the estimator's
attributes, and the state of its stored ``RandomState``, exactly as they
were, so the next call matches a twin that never saw the failure; and
whatever happens, torch's thread-local grad mode is restored (a Ctrl-C
landing inside ``torch.no_grad().__enter__`` would otherwise leave autograd
off for every later fit in the thread).
"""

import contextlib

import numpy as np
import torch


@contextlib.contextmanager
def fit_guard(estimator):
    """Restore ``estimator`` if the body raises; restore grad mode always."""
    snapshot = estimator.__dict__.copy()
    random_state = snapshot.get("_random_state")
    rng_state = random_state.get_state() if random_state is not None else None
    grad_enabled = torch.is_grad_enabled()
    try:
        torch.set_grad_enabled(True)
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(snapshot)
        if random_state is not None:
            random_state.set_state(rng_state)
        raise
    finally:
        torch.set_grad_enabled(grad_enabled)


def check_normalised(X_t):
    """The normalised training tensor must be usable by float32 arithmetic.

    A value that is not finite, or so large that its square overflows
    float32 (the squared error of a row), is a problem of the data, not of
    the learning rate: raise a ValueError that says so.
    """
    if not len(X_t):
        return
    low, high = torch.aminmax(X_t)  # no temporary the size of X (NaN propagates)
    peak = float(torch.maximum(-low, high))
    limit = float(np.sqrt(np.finfo(np.float32).max / max(1, X_t.shape[1])))
    if not peak <= limit:  # also catches NaN
        raise ValueError(
            f"X holds values that are not finite or too large once normalised with "
            f"the model's mean_ and scale_ (largest |normalised value| {peak:.6g}, "
            f"the float32 training arithmetic allows {limit:.6g}). Check X for "
            "extreme values or rescale it; a partial_fit chunk is normalised with "
            "the statistics of the first chunk."
        )


def check_finite_weights(module):
    """A ValueError when training left a non-finite weight (the last step
    can blow up after the epoch's loss, computed before it, was finite)."""
    params = [p.detach() for p in module.parameters()]
    if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise FloatingPointError("the weights became non-finite in the last step")


def low_if_nan(scores):
    """Scores with NaN as -inf: a row whose score overflowed (an extreme
    outlier) scores lowest, never NaN (the weights are known finite)."""
    return torch.where(torch.isnan(scores), float("-inf"), scores)


# Rows of the training data scored after a fit whose objective asks for it.
_SCORED_ROWS = 256


def check_training_scores(net, data):
    """A FloatingPointError when the fitted model scores its own training
    rows (the first :data:`_SCORED_ROWS`) as NaN or -inf: training left a
    model that is broken (e.g. a VAE's variance head exploded) even though
    the training loss stayed finite."""
    rows = data.train_rows
    rows = rows[:_SCORED_ROWS] if rows is not None else slice(0, _SCORED_ROWS)
    x = data.X[rows]
    y = None if data.y is None else data.y[rows]
    module = net.module_
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            scores = net.objective._score_samples_model(module, x, y)
    finally:
        module.train(was_training)
    if len(x) and not bool(torch.isfinite(scores).all()):
        raise FloatingPointError(
            "the fitted model scores its own training data as "
            f"{float(scores[~torch.isfinite(scores)][0])}"
        )


@contextlib.contextmanager
def allocation_errors(estimator, n_features):
    """Turn a failed allocation of the network into a ValueError that says
    what was asked for (the allocator's own message names only bytes)."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        out_of_memory = isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or any(
            word in str(exc) for word in ("alloc", "out of memory", "numel", "overflow")
        )
        if not out_of_memory:
            raise
        sizes = (n_features, *estimator._hidden_sizes(), estimator.n_components)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        raise ValueError(
            f"Cannot allocate the network for hidden_layer_sizes="
            f"{estimator.hidden_layer_sizes!r} with n_features={n_features} and "
            f"n_components={estimator.n_components}: its encoder alone has "
            f"{n_params:,} parameters ({4 * n_params / 2**30:.3g} GiB in float32, "
            f"twice that with the decoder); use smaller layers. ({exc})"
        ) from None
