"""The one home of the scikit-learn contract for every skae estimator."""

import copy
import threading
import warnings
from typing import Callable, NamedTuple

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state

from ._losses import ReconstructionLoss, l1_activity, l2_penalty
from ._modules import ACTIVATIONS, Autoencoder
from ._net import AutoencoderNet, TrainingDiverged
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_is_fitted,
    fused_adam_supported,
    resolve_device,
    validate_data,
)

_ACTIVATION_NAMES = StrOptions(set(ACTIVATIONS))
# Rows per inference chunk are chosen so that one activation matrix holds
# about this many numbers (bounded memory for any n_samples).
_CHUNK_ELEMENTS = 2**22
_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


# The C++ guard behind ``torch.inference_mode()``, without that context
# manager's Python wrapper, which alone costs several microseconds a call.
_inference_guard = getattr(torch._C, "_InferenceMode", None) or (
    lambda enabled: torch.inference_mode(enabled)
)


class _Inference(NamedTuple):
    """What inference on one dtype needs, resolved once."""

    module: torch.nn.Module  # eval mode, in the dtype
    device: torch.device
    on_cpu: bool
    width: int  # widest layer, for the chunk size
    encode: Callable  # x -> code, normalisation included
    decode: Callable  # code -> x in the input's units


def _run_chunk(fn, entry, chunk):
    """``fn(entry, x)`` on one numpy chunk, back as a numpy array."""
    x = torch.from_numpy(chunk if chunk.flags.writeable else chunk.copy())
    if entry.on_cpu:  # no device round trip: each call costs microseconds
        return fn(entry, x).numpy()
    return fn(entry, x.to(entry.device)).cpu().numpy()


class _InferenceCache:
    """Per-dtype :class:`_Inference` entries.

    float64 input runs through a float64 copy of the fitted module, built
    lazily with the exact float64 normalisation statistics, so results do not
    depend on how rows are batched (scikit-learn's subset-invariance checks
    compare at 1e-7). Resolving the device, the widest layer and the plain
    encode/decode functions once keeps a one-row ``transform`` from walking
    the module every call. Equality is identity, so ``check_dict_unchanged``
    does not see a lazily filled cache as a changed estimator; a lock makes
    concurrent first calls from several threads build one copy.
    """

    def __init__(self):
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, module, dtype, mean, scale):
        entry = self._entries.get(dtype)
        if entry is None:
            with self._lock:
                entry = self._entries.get(dtype)
                if entry is None:
                    params = list(module.parameters())
                    if params[0].dtype != dtype:
                        module = copy.deepcopy(module).to(dtype).eval()
                        # Exact statistics, not the float32 buffers upcast.
                        module.set_normalization(mean, scale)
                    widths = [p.shape[0] for p in params if p.dim() == 2]
                    entry = _Inference(
                        module,
                        params[0].device,
                        params[0].device.type == "cpu",
                        max(widths, default=1),
                        *module.plain_functions(),
                    )
                    self._entries[dtype] = entry
        return entry


def _store_params(estimator, params):
    """Store every ``__init__`` argument as given, as scikit-learn requires.

    Each estimator spells out its full signature (``get_params`` reads it);
    this keeps the body from repeating the whole list once more.
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared scikit-learn machinery for all skae autoencoders.

    Subclasses override hooks only:

    * :meth:`_build_module` returns the torch module (see ``skae._modules``
      for the contract its ``forward``/``encode``/``decode`` follow);
    * :meth:`_loss` returns the batch objective (call ``super()._loss`` and
      add a term);
    * :meth:`_corrupt` transforms the training input (identity here);
    * :meth:`_score_samples_model` gives the per-sample score used by
      :meth:`score_samples` and for early stopping;
    * :meth:`_check_params` adds data-dependent checks;
    * :meth:`_normalization_stats` is called once per fresh fit with the
      validated raw X and returns the normalisation; a variant that needs
      constants in the model's space (the denoiser's "zero" and extremes)
      wraps it.

    Do not instantiate directly; use :class:`skae.AutoencoderTransformer`.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [_ACTIVATION_NAMES],
        "code_activation": [_ACTIVATION_NAMES],
        "output_activation": [_ACTIVATION_NAMES, None],
        "loss": [StrOptions({"squared_error", "log_loss"})],
        "normalize": [StrOptions({"auto", "global", "feature"}), None],
        "tied_weights": ["boolean"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions({"adam", "sgd"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        code_activation="identity",
        output_activation=None,
        loss="squared_error",
        normalize="auto",
        tied_weights=False,
        alpha=1e-4,
        sparsity_weight=0.0,
        solver="adam",
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="auto",
        callbacks=None,
    ):
        _store_params(self, locals())

    # ------------------------------------------------------------------
    # hooks for subclasses
    # ------------------------------------------------------------------
    def _build_module(self, n_features):
        """Return a freshly initialised torch module for ``n_features`` inputs."""
        return Autoencoder(
            n_features,
            self.n_components,
            hidden_layer_sizes=self._hidden_sizes(),
            activation=self.activation,
            code_activation=self.code_activation,
            output_activation=self._output_activation,
            tied_weights=self.tied_weights,
        )

    def _corrupt(self, x):
        """Training-time input corruption; identity for a plain autoencoder."""
        return x

    def _loss(self, net, x, x_in, y, output):
        """Batch objective: mean reconstruction loss plus penalties.

        Parameters
        ----------
        net : AutoencoderNet
            The training net (``net.module_``, ``net.criterion_``).
        x : Tensor
            Clean (normalised) batch, the reconstruction target.
        x_in : Tensor
            What the module saw (``_corrupt(x)``).
        y : Tensor or None
            Batch targets for supervised variants.
        output : tuple of Tensor
            ``module(x_in)``: decoder pre-activations first, code second.
        """
        loss = self._reconstruction_loss(net, x, output).mean()
        penalty = self._penalty(net, x, output)
        # No penalty: no scalar add (one kernel launch a step on a GPU).
        return loss if isinstance(penalty, float) and penalty == 0.0 else loss + penalty

    def _reconstruction_loss(self, net, x, output):
        """Per-sample reconstruction term (the skorch criterion's value)."""
        return net.criterion_(output[0], x)

    def _penalty(self, net, x, output):
        """Weight decay (``alpha``, as MLP) and code sparsity, a scalar.

        The weight decay's gradient is the optimiser's (``weight_decay`` set
        per batch by the net); its value is added here without autograd, so
        that the loss and ``loss_curve_`` are MLP's.
        """
        penalty = 0.0
        if self.alpha:
            with torch.no_grad():
                penalty = self.alpha * l2_penalty(net.module_.weights()) / len(x)
        if self.sparsity_weight:
            penalty = penalty + self.sparsity_weight * l1_activity(output[1]).mean()
        return penalty

    def _score_samples_model(self, module, x, y=None):
        """Per-sample score (higher is better) for normalised ``x``.

        Minus the reconstruction error in the user's units: the sum of
        squared errors over features for ``'squared_error'``, the summed
        binary cross-entropy for ``'log_loss'``.
        """
        decoded = module(x)[0]
        if self._loss_name == "log_loss":
            return -ReconstructionLoss("log_loss")(decoded, x)
        diff = (module.output_activation(decoded) - x) * module.input_scale
        return -diff.pow(2).sum(dim=1)

    def _check_params(self, X):
        """Data-dependent checks; raise ValueError naming parameter and values."""
        n_samples, n_features = X.shape
        if self.n_components > n_features:
            raise ValueError(
                f"n_components={self.n_components} must be between 1 and "
                f"n_features={n_features}."
            )
        hidden = np.asarray(self.hidden_layer_sizes).ravel()
        if hidden.size and (
            not np.issubdtype(hidden.dtype, np.integer) or np.any(hidden <= 0)
        ):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        if self.loss == "log_loss":
            if self.output_activation not in (None, "logistic"):
                raise ValueError(
                    "loss='log_loss' needs output_activation='logistic' (or None), "
                    f"got output_activation={self.output_activation!r}."
                )
            if self.normalize not in ("auto", None):
                raise ValueError(
                    "loss='log_loss' models data in [0, 1] as it is; use "
                    f"normalize='auto' or None, got normalize={self.normalize!r}."
                )
            lo, hi = float(X.min()), float(X.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    "loss='log_loss' needs every value of X in [0, 1]; got values "
                    f"in [{lo:.6g}, {hi:.6g}]. Rescale X (e.g. with MinMaxScaler) or "
                    "use loss='squared_error'."
                )
        if self.early_stopping and n_samples < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples, got n_samples={n_samples}."
            )
        if X.dtype == np.float64 and X.size:
            # Training runs in float32: larger values would become inf.
            limit = float(np.finfo(np.float32).max)
            lo, hi = float(X.min()), float(X.max())
            if lo < -limit or hi > limit:
                raise ValueError(
                    f"X has values in [{lo:.6g}, {hi:.6g}], beyond the float32 range "
                    f"(+/-{limit:.6g}) that the network trains in; rescale X (e.g. "
                    "with StandardScaler)."
                )

    # ------------------------------------------------------------------
    # resolved settings (properties of hyperparameters, never written back)
    # ------------------------------------------------------------------
    def _hidden_sizes(self):
        if isinstance(self.hidden_layer_sizes, Integral):
            return (int(self.hidden_layer_sizes),)
        return tuple(int(h) for h in self.hidden_layer_sizes)

    @property
    def _loss_name(self):
        # The loss the model was fitted with: scoring a fitted model must not
        # change when the hyperparameter is set to something else afterwards.
        spec = getattr(self, "_fit_spec", None)
        return spec["loss"] if spec is not None else self.loss

    @property
    def _output_activation(self):
        if self.output_activation is not None:
            return self.output_activation
        return "logistic" if self.loss == "log_loss" else "identity"

    def _normalization(self):
        if self.normalize == "auto":
            return "global" if self.loss == "squared_error" else None
        return self.normalize

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on X, continuing from the current state.

        The first call initialises the model (and the input normalisation,
        from this first chunk); later calls check the feature count and
        resume the optimiser.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The estimator.
        """
        return self._fit(X, y, incremental=True)

    def _fit(self, X, y, incremental):
        # A failed call leaves the estimator as it was: attributes are
        # snapshotted here, and training continues on a copy of the net.
        snapshot = self.__dict__.copy()
        try:
            self._fit_unguarded(X, y, incremental)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise
        return self

    def _validate_fit_data(self, X, y, reset):
        # float64 and float32 are kept; anything else (uint8 images, ints)
        # becomes float32, what the network trains on: half the memory of a
        # float64 copy, and the same model (integers up to 2**24 are exact).
        X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
        return X, None

    def _fit_unguarded(self, X, y, incremental):
        continuing = (incremental or self.warm_start) and hasattr(self, "_net")
        # Integer or boolean arrays (uint8 images) are converted by
        # validation into a new float32 array that nothing else references.
        converted = isinstance(X, np.ndarray) and X.dtype.kind in "biu"
        X, y = self._validate_fit_data(X, y, reset=not continuing)
        converted = converted and X.dtype == np.float32
        self._check_params(X)
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True; use fit, or "
                "set early_stopping=False."
            )
        if continuing:
            spec = self._module_spec(X.shape[1])
            if spec != self._fit_spec:
                changed = sorted(k for k in spec if spec[k] != self._fit_spec.get(k))
                raise ValueError(
                    f"Cannot continue training after changing {', '.join(changed)}: "
                    "the network's shape depends on them. Refit with "
                    "warm_start=False."
                )
        device = resolve_device(self.device)
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    f"Got batch_size={self.batch_size} larger than n_samples="
                    f"{n_samples}; it is clipped to {n_samples}.",
                    UserWarning,
                    stacklevel=4,
                )
            batch_size = min(self.batch_size, n_samples)
        epochs = 1 if incremental else self.max_iter

        if not continuing:
            self._random_state = check_random_state(self.random_state)
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))

        dev = torch.device(device)
        fork_devices = [dev.index or 0] if dev.type == "cuda" else []
        if not continuing:
            # Before the device copy exists, so that the statistics'
            # temporaries and the copy are never held at the same time.
            mean, scale = self._normalization_stats(X)
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            # The one copy of the training data on the device; normalised in
            # place, and batches are sliced from it. On the CPU, a float32
            # array that validation just made is that copy already.
            if converted and dev.type == "cpu":
                X_t = torch.from_numpy(X)
            else:
                X_t = torch.tensor(X, dtype=torch.float32, device=device)
            y_t = self._to_target_tensor(y, device)
            split = None
            if self.early_stopping:
                # Drawn here, not by the net, so that nothing trains on the
                # held-out rows: StackedAE's pretraining sees the same
                # training rows as the fine-tuning.
                perm = torch.randperm(n_samples, device=X_t.device)
                n_valid = self._n_valid(n_samples)
                split = (perm[n_valid:], perm[:n_valid])
            if continuing:
                X_t.sub_(self.module_.input_mean).div_(self.module_.input_scale)
                # warm_start builds a new net around a copy of the module;
                # partial_fit copies the whole net below.
                module = None if incremental else copy.deepcopy(self.module_)
            else:
                X_t.sub_(X_t.new_tensor(mean)).div_(X_t.new_tensor(scale))
                rows = None if split is None else split[0]
                module = self._init_module(X_t, y_t, rows).to(device)
                module.set_normalization(mean, scale)
            history = None
            if continuing and incremental:
                # partial_fit resumes the optimiser and callbacks, as MLP does,
                # on a copy of the net, so that a failed call changes nothing.
                # The history only grows: it is shared, not copied (a copy
                # per call would make a stream of n calls cost O(n^2)), and
                # cut back if the call fails.
                history = self._net.history
                net = copy.deepcopy(self._net, memo={id(self): self, id(history): history})
            else:
                # fit (also with warm_start) starts a fresh optimiser with the
                # current hyperparameters, as MLP does.
                net = self._make_net(module, device)
            net.batch_size, net.max_epochs = batch_size, epochs
            if not net.initialized_:
                net.initialize()
            n_before = len(net.history)
            stopping = dict(net.callbacks_)["stopping"]
            stopping.active_ = not incremental
            if not incremental:
                stopping.misses_ = 0
            net._split = split
            try:
                net.partial_fit(X_t, y_t)
            except BaseException as exc:
                if history is not None:
                    del history[n_before:]
                if not isinstance(exc, TrainingDiverged):
                    raise
                raise ValueError(
                    f"Training diverged: {exc}. The learning rate "
                    f"learning_rate_init={self.learning_rate_init} is probably too "
                    "high for this data; lower it (or scale the input)."
                ) from None
            finally:
                net.__dict__.pop("_split", None)  # n indices: not kept, not pickled
        net.module_.eval()

        self._net = net
        self.module_ = net.module_
        self._fit_spec = self._module_spec(X.shape[1])
        self.n_components_ = self.n_components
        self.device_ = device
        self.batch_size_ = batch_size
        if not continuing:
            self.mean_, self.scale_ = mean, scale
        new_rows = net.history[n_before:]
        n_train = n_samples - (self._n_valid(n_samples) if self.early_stopping else 0)
        new_losses = [row["train_loss"] for row in new_rows if "train_loss" in row]
        prev_losses = self.loss_curve_ if continuing else []
        self.loss_curve_ = prev_losses + new_losses
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = (self.t_ if continuing else 0) + len(new_losses) * n_train
        if self.early_stopping:
            self.validation_scores_ = [
                row["valid_score"] for row in new_rows if "valid_score" in row
            ]
            self.best_validation_score_ = stopping.best_score_
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            # inf when no epoch finished (interrupted before the first).
            self.best_loss_ = min(self.loss_curve_, default=float("inf"))
        self._inference = _InferenceCache()
        if not (incremental or stopping.stopped_ or net.interrupted_):
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return self

    def _n_valid(self, n_samples):
        return max(1, int(round(self.validation_fraction * n_samples)))

    def _module_spec(self, n_features):
        return {
            "n_features": n_features,
            "n_components": self.n_components,
            "hidden_layer_sizes": self._hidden_sizes(),
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output_activation": self._output_activation,
            "tied_weights": self.tied_weights,
            "loss": self.loss,
        }

    def _make_net(self, module, device):
        optimizer = torch.optim.Adam if self.solver == "adam" else torch.optim.SGD
        opt_kwargs = {}
        if self.solver == "adam" and fused_adam_supported(device):
            opt_kwargs = {"optimizer__fused": True}
        if self.solver == "sgd":
            opt_kwargs = {"optimizer__momentum": 0.9, "optimizer__nesterov": True}
        return AutoencoderNet(
            module,
            ReconstructionLoss(self._loss_name, self._output_activation),
            estimator=self,
            optimizer=optimizer,
            lr=self.learning_rate_init,
            shuffle=self.shuffle,
            validation_fraction=self.validation_fraction if self.early_stopping else None,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            alpha=self.alpha,
            callbacks=list(self.callbacks) if self.callbacks else None,
            verbose=self.verbose,
            device=device,
            **opt_kwargs,
        )

    def _normalization_stats(self, X):
        """Per-feature mean and divisor (float64 ndarrays) for ``normalize``.

        Computed from X in float64, in bounded chunks (no full-size copy).
        """
        n_samples, n_features = X.shape
        mode = self._normalization()
        if mode is None:
            return np.zeros(n_features), np.ones(n_features)
        mean = X.mean(axis=0, dtype=np.float64)
        sq = np.zeros(n_features)
        step = max(1, _CHUNK_ELEMENTS // 2 // n_features)  # 16 MB temporaries
        for start in range(0, n_samples, step):
            diff = X[start : start + step].astype(np.float64)
            diff -= mean
            diff *= diff
            sq += diff.sum(axis=0)
            del diff  # freed before the next chunk's is made
        var = sq / n_samples
        if mode == "global":
            total = float(np.sqrt(var.mean()))
            return mean, np.full(n_features, total if total > 0 else 1.0)
        scale = np.sqrt(var)
        scale[scale == 0] = 1.0
        return mean, scale

    def _init_module(self, X_t, y_t, rows=None):
        """Return the module to train, given the normalised training tensor.

        ``rows`` (an index tensor, or None for all) are the rows training may
        use: with ``early_stopping`` the others are the held-out validation
        set. The default builds a fresh network with :meth:`_build_module`;
        a variant that needs the data to initialise (greedy layer-wise
        pretraining) overrides this. Runs under the fit's seeded generator.
        """
        return self._build_module(X_t.shape[1])

    def _to_target_tensor(self, y, device):
        """Targets as a device tensor for supervised variants (None here)."""
        return None

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _inference_entry(self, dtype):
        """The :class:`_Inference` entry that runs inputs of numpy ``dtype``."""
        return self._inference.get(
            self.module_, _TORCH_DTYPES[np.dtype(dtype)], self.mean_, self.scale_
        )

    def _inference_module(self, dtype):
        """The fitted module in the precision of numpy ``dtype`` (eval mode)."""
        return self._inference_entry(dtype)[0]

    def _run(self, X, fn, out_dtype=None):
        """Apply ``fn(entry, x_tensor)`` to X in bounded chunks, no autograd.

        ``entry`` is the dtype's :class:`_Inference` (module and plain
        encode/decode functions). Inputs that fit in one chunk (the usual
        case) take the shortest path: a one-row call is latency-bound.
        """
        entry = self._inference_entry(X.dtype)
        step = max(1, _CHUNK_ELEMENTS // max(entry.width, X.shape[1]))
        with _inference_guard(True):
            if X.shape[0] <= step:
                out = _run_chunk(fn, entry, X)
            else:
                out = np.concatenate(
                    [
                        _run_chunk(fn, entry, X[start : start + step])
                        for start in range(0, X.shape[0], step)
                    ]
                )
        return out.astype(out_dtype or X.dtype, copy=False)

    def _check_inference_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def transform(self, X):
        """Encode X into the code space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in X's floating dtype.
        """
        X = self._check_inference_input(X)
        return self._run(X, lambda e, x: e.encode(x))

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstructions, in the codes' floating dtype.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}."
                f"inverse_transform expects codes of width n_components="
                f"{self.n_components_}."
            )
        return self._run(Z, lambda e, z: e.decode(z))

    def score_samples(self, X):
        """Per-sample score: minus the reconstruction error (higher is better).

        For ``loss='squared_error'`` it is ``-sum_j (x_j - x_hat_j)^2`` in the
        units of X; for ``'log_loss'`` the negative summed binary
        cross-entropy. Low values flag samples the model reconstructs badly,
        e.g. outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Per-sample scores.
        """
        X = self._check_inference_input(X)
        if self._loss_name == "log_loss" and X.size:
            lo, hi = float(X.min()), float(X.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    "loss='log_loss' scores data in [0, 1]; got values in "
                    f"[{lo:.6g}, {hi:.6g}]. Rescale X as it was for fit."
                )
        return self._run(
            X, lambda e, x: self._score_samples_model(e.module, e.module.normalize(x))
        )

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` (higher is better).

        This lets ``GridSearchCV`` rank autoencoders without a ``scoring``
        argument, as it does for :class:`~sklearn.decomposition.PCA`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean per-sample score.
        """
        return float(np.mean(self.score_samples(X)))

    # ------------------------------------------------------------------
    # persistence
    # ------------------------------------------------------------------
    def save(self, path):
        """Save the fitted estimator to ``path`` without pickle.

        The file is a ``.npz`` archive: the hyperparameters and fitted
        attributes as JSON, the network's weights and the optimiser's state
        as plain numeric arrays, with the skae version, a format version and
        checksums. :func:`skae.load` rebuilds the estimator from it and never
        runs code from the file, so a model from an untrusted source is safe
        to load. Outputs after loading are identical; a model fitted on a GPU
        loads on a CPU-only machine. ``callbacks`` (arbitrary objects) cannot
        be saved: set them to None first.

        Parameters
        ----------
        path : str or path-like
            Destination file; written atomically (a temporary file in the
            same folder, then renamed).

        See Also
        --------
        skae.load : Load a saved estimator.
        """
        from ._persistence import save

        save(self, path)

    # ------------------------------------------------------------------
    # scikit-learn plumbing
    # ------------------------------------------------------------------
    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_is_fitted__(self):
        return hasattr(self, "module_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        # The net pickles its torch state itself (skorch moves CUDA tensors
        # through ``map_location`` on load); ``module_`` is the same object
        # and is re-linked on load. The inference cache is rebuilt lazily.
        state.pop("_inference", None)
        if "module_" in state:
            state["module_"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_net" in state:
            self.module_ = self._net.module_
            self.device_ = str(self._net.device)
            self._inference = _InferenceCache()
