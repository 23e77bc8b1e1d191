"""The one home of the scikit-learn contract for every skae estimator.

``fit`` reads as four steps: validate, initialise (:meth:`_initial_net`),
train (:func:`skae._training.train`) and record (:meth:`_record_fit`). See
``doc/design.rst`` for the rooms around it.
"""

import copy

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_array, check_random_state

from . import _distributed, _training
from ._constraints import BASE_CONSTRAINTS
from ._custom_modules import build_module as build_custom_module
from ._faults import allocation_errors, check_normalised, fit_guard, low_if_nan
from ._inference import InferenceCache, run
from ._modules import Autoencoder
from ._objective import ReconstructionObjective
from ._pca_compat import PCACompatMixin
from ._poisson import check_counts
from ._rng import build_module
from ._settings import ResolvedSettings
from ._sparse import normalize_rows, normalized_extremes, training_rows
from ._state import FittedStateMixin
from ._threads import fit_threads
from ._validation import (
    _fit_context,
    check_is_fitted,
    check_unit_interval,
    detached,
    resolve_device,
    validate_data,
)
from ._warnings import warn_not_converged


def _store_params(estimator, params):
    """Store every ``__init__`` argument as given, as scikit-learn requires.

    Each estimator spells out its full signature (``get_params`` reads it);
    this keeps the body from repeating the whole list once more.
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseAutoencoder(
    PCACompatMixin,
    ReconstructionObjective,
    ResolvedSettings,
    FittedStateMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Shared scikit-learn machinery for all skae autoencoders.

    A variant overrides only what differs, through these hooks:

    * ``_module_class`` / :meth:`_build_module`: the torch module (see
      ``skae._modules`` for the contract its methods follow);
    * :meth:`_init_module`: the module to train, given the normalised data
      (StackedAE pretrains it; VariationalAE sets its noise variance);
    * :meth:`_loss`, :meth:`_reconstruction_loss`, :meth:`_penalty`: the
      batch objective and its parts (call ``super()`` and add a term);
    * :meth:`_corrupt`: the training input's corruption (identity here);
    * :meth:`_score_samples_model`: the per-sample score of
      :meth:`score_samples` and of early stopping;
    * :meth:`_check_params`: data-dependent checks;
    * :meth:`_validate_fit_data`, :meth:`_to_target_tensor`,
      :meth:`_module_spec`: what a supervised variant adds (y, its classes).

    Do not instantiate directly; use :class:`skae.AutoencoderTransformer`.
    """

    _module_class = Autoencoder
    _variational = False  # the encoder gives a mean and a log-variance
    # Fitted attributes rebuilt from the others, never pickled or saved.
    _transient_attributes = frozenset({"_net", "module_", "_inference", "device_"})

    _parameter_constraints = BASE_CONSTRAINTS

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
        distributed=False,
        encoder=None,
        decoder=None,
        input_shape=None,
        conv_channels=(32, 64),
        kernel_size=3,
    ):
        _store_params(self, locals())

    def _build_module(self, n_features):
        """A torch module for ``n_features`` inputs, initialised by ``skae._rng``."""
        if self.encoder is not None or self.decoder is not None:
            return build_custom_module(self, n_features, self._variational)
        return build_module(
            self._module_class,
            n_features,
            self.n_components,
            hidden_layer_sizes=self._hidden_sizes(),
            activation=self.activation,
            code_activation=self.code_activation,
            output_activation=self._output_activation,
            tied_weights=self.tied_weights,
        )

    def _init_module(self, data, mean, scale):
        """Return the module to train.

        ``data`` is the :class:`~skae._batches.TrainingData` of this fit
        (normalised device tensors; ``train_rows`` are the rows training may
        use, the others are held out for early stopping); ``mean`` and
        ``scale`` the normalisation. Runs under the fit's seeded generator.
        """
        return self._build_module(data.X.shape[1])

    def _make_net(self, module, device):
        """A fresh training net for ``module`` with this estimator's settings."""
        return _training.make_net(
            module, self, self, device, self._loss_name, self._output_activation,
            callbacks=self.callbacks,
        )
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
        # A failed call changes nothing (_faults.fit_guard; training uses a copy).
        with fit_guard(self), fit_threads():  # fit_threads: this fit's share of the cores
            self._fit_unguarded(X, y, incremental)
        return self

    def _fit_unguarded(self, X, y, incremental):
        continuing = (incremental or self.warm_start) and hasattr(self, "_net")
        # Integer or boolean arrays (uint8 images) become, in validation, a
        # new float32 array that nothing else references: the CPU copy.
        owned = isinstance(X, np.ndarray) and X.dtype.kind in "biu"
        group = _distributed.process_group(self.distributed)
        with _distributed.vote(group):  # a rank that fails here fails them all
            X, y = self._validate_fit_data(X, y, reset=not continuing)
            self._check_fit(X, incremental, continuing)
            device = resolve_device(self.device)
            device = device if group is None else group.device(device)
            batch_size = self._resolve_batch_size(X.shape[0])
            if not continuing:
                self._random_state = check_random_state(self.random_state)
                # Before the device copy, so that the statistics' temporaries
                # and the copy are never held at the same time.
                stats = self._normalization_stats(X)
            seed = _training.draw_seed(self._random_state)
        seed = _distributed.agree(group, X, seed, None if continuing else stats)
        with _training.seeded(seed, device), _distributed.training(group, seed):
            X_t = training_rows(X, device, owned, _training.device_tensor)
            split = None
            if self.early_stopping:
                # Drawn before the module, so that nothing trains on the
                # held-out rows (StackedAE's pretraining included).
                split = _training.draw_split(len(X_t), self._n_valid(len(X_t)), device)
            data = _training.training_data(X_t, self._to_target_tensor(y, device), split)
            if continuing:
                normalize_rows(X_t, self.module_.input_mean, self.module_.input_scale)
                check_normalised(normalized_extremes(X_t))
                net = self._continued_net(incremental, device)
            else:
                normalize_rows(X_t, *stats)
                check_normalised(normalized_extremes(X_t))
                net = self._initial_net(data, stats, device)
            n_before = _training.train(
                net, data, batch_size=batch_size, resume=continuing and incremental,
                epochs=1 if incremental else self.max_iter,
                learning_rate=self.learning_rate_init,
            )
        self._record_fit(net, n_before, X, None if continuing else stats, incremental)
        self.device_, self.batch_size_ = device, batch_size

    def _initial_net(self, data, stats, device):
        """A net around a freshly initialised (or pretrained) module."""
        with allocation_errors(self, data.X.shape[1]):
            module = self._init_module(data, *stats).to(device)
        module.set_normalization(*stats)
        return self._make_net(module, device)

    def _continued_net(self, incremental, device):
        """partial_fit resumes a copy of the net (optimiser included), as MLP;
        a warm-start fit gets a fresh optimiser around a copy of the module."""
        if incremental:
            return _training.resume_net(self._net, self)
        module = copy.deepcopy(self.module_)
        return self._make_net(module, device)

    def _record_fit(self, net, n_before, X, stats, incremental):
        """Set the fitted attributes from the trained net's new history rows."""
        continuing = stats is None
        rule = net.stopping_rule
        self._net, self.module_ = net, net.module_
        self._fit_spec = self._module_spec(X.shape[1])
        self.n_components_ = self.n_components
        if not continuing:
            self.mean_, self.scale_ = stats
        new_rows = net.history[n_before:]
        n_samples = X.shape[0]
        n_train = n_samples - (self._n_valid(n_samples) if self.early_stopping else 0)
        new_losses = [row["train_loss"] for row in new_rows if "train_loss" in row]
        self.loss_curve_ = (self.loss_curve_ if continuing else []) + new_losses
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = (self.t_ if continuing else 0) + len(new_losses) * n_train
        if self.early_stopping:
            self.validation_scores_ = [
                row["valid_score"] for row in new_rows if "valid_score" in row
            ]
            self.best_validation_score_ = rule.best_score_
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            # inf when no epoch finished (interrupted before the first).
            self.best_loss_ = min(self.loss_curve_, default=float("inf"))
        self._inference = InferenceCache()
        if not (incremental or rule.stopped_ or net.interrupted_):
            warn_not_converged(self)

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _inference_entry(self, dtype):
        """The :class:`~skae._inference.Inference` entry for numpy ``dtype``."""
        return self._inference.get(self.module_, dtype, self.mean_, self.scale_)

    def _inference_module(self, dtype):
        """The fitted module in the precision of numpy ``dtype`` (eval mode)."""
        return self._inference_entry(dtype).module

    def _run(self, X, fn, out_dtype=None, **kwargs):
        """``fn(entry, x_tensor)`` over X in bounded chunks (see ``_inference.run``)."""
        return run(self._inference_entry(X.dtype), X, fn, out_dtype, **kwargs)

    def _check_inference_input(self, X):
        check_is_fitted(self)
        return validate_data(
            self, detached(X), reset=False, dtype=[np.float64, np.float32],
            accept_sparse=["csr", "csc"],
        )

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
        Z = check_array(detached(X), dtype=[np.float64, np.float32])
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
        cross-entropy; for ``'poisson'`` the log-probability of the counts,
        ``sum_j x_j log r_j - r_j - log(x_j!)`` with rates ``r``. Low
        values flag samples the model reconstructs badly, e.g. outliers.

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
        if self._loss_name == "log_loss":
            check_unit_interval(X, "scores")
        if self._loss_name == "poisson":
            check_counts(X, "scores")
        return self._run(
            X, lambda e, x: low_if_nan(self._score_samples_model(e.module, e.module.normalize(x)))
        )

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` (higher is better).

        A wider code always scores higher: this cannot choose n_components.

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
        tags.input_tags.sparse = True
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags

