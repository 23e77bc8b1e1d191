"""What code written for PCA meets in skae, said plainly.

Code written around :class:`~sklearn.decomposition.PCA` reads attributes an
autoencoder does not have and passes ``n_components`` forms it cannot honour.
:class:`PCACompatMixin` turns both into errors that say what to use instead
(``doc/coming_from_pca.rst`` has the full table):

* ``n_components=None``, a float in (0, 1) and ``'mle'`` raise scikit-learn's
  ``InvalidParameterError`` with the skae way of choosing the code size;
* PCA-only constructor arguments (``whiten``, ``iterated_power``, ...)
  raise ``TypeError`` saying what skae offers instead;
* PCA-only attributes (``components_``, ``explained_variance_ratio_``, ...)
  raise ``AttributeError`` naming the skae equivalent. Any other missing
  attribute raises Python's usual error, and attributes the class defines
  (properties such as ``VariationalAE.noise_variance_``) are untouched.
"""

from numbers import Real

from sklearn.utils._param_validation import InvalidParameterError

_CHOOSE = (
    "choose an int: compare held-out VariationalAE.score (its ELBO) across "
    "n_components, or the cross-validated score of a downstream estimator in a "
    "Pipeline (an autoencoder's own score always prefers the largest code; see "
    "'Coming from PCA' in the documentation)"
)

_N_COMPONENTS = {
    "None": (
        "n_components=None keeps every PCA component, which for an autoencoder "
        "means no reduction at all (the identity map); " + _CHOOSE
    ),
    "float": (
        "a fraction of explained variance cannot be reached by construction: an "
        "autoencoder's codes are not ordered by variance, so the code size is "
        "not read off one fit; " + _CHOOSE + ". The fraction that a fitted model "
        "explains is sklearn.metrics.r2_score(X, est.inverse_transform("
        "est.transform(X)), multioutput='variance_weighted')"
    ),
    "mle": (
        "skae has no likelihood-based rank selection (Minka's MLE is PCA's); "
        + _CHOOSE
    ),
}

_VARIANCE = (
    "an autoencoder's codes are neither orthogonal nor ordered, so there is no "
    "variance per component. The fraction of the variance of X that the "
    "reconstructions explain (PCA's explained_variance_ratio_.sum()) is "
    "sklearn.metrics.r2_score(X, est.inverse_transform(est.transform(X)), "
    "multioutput='variance_weighted')"
)

PCA_ONLY_ATTRIBUTES = {
    "components_": (
        "an autoencoder has no linear components: its decoder is nonlinear. "
        "The decoded image of each unit code, "
        "est.inverse_transform(np.eye(n_components)) - "
        "est.inverse_transform(np.zeros((1, n_components))), plays that part "
        "for display; ContractiveAE.jacobian(X) gives the local directions at X"
    ),
    "explained_variance_": _VARIANCE,
    "explained_variance_ratio_": _VARIANCE,
    "singular_values_": _VARIANCE,
    "noise_variance_": (
        "only VariationalAE with loss='squared_error' has an observation-noise "
        "model: VariationalAE.noise_variance_"
    ),
    "n_samples_": (
        "the number of training rows is not stored; t_ counts the training "
        "samples seen over all epochs (n_iter_ epochs)"
    ),
    "get_covariance": (
        "an autoencoder defines no Gaussian covariance; VariationalAE."
        "score_samples gives a lower bound on the log-density instead"
    ),
    "get_precision": (
        "an autoencoder defines no Gaussian covariance; VariationalAE."
        "score_samples gives a lower bound on the log-density instead"
    ),
}


PCA_ONLY_PARAMETERS = {
    "whiten": (
        "codes have no per-component variance to equalise; put a "
        "sklearn.preprocessing.StandardScaler after the autoencoder for codes "
        "of unit variance"
    ),
    "copy": "skae never modifies X in place, so there is nothing to copy",
    "svd_solver": "an autoencoder is trained, not decomposed: see solver and max_iter",
    "iterated_power": "there is no power iteration: see max_iter (epochs) and tol",
    "n_oversamples": "there is no randomized SVD: see max_iter (epochs)",
    "power_iteration_normalizer": "there is no power iteration: see max_iter (epochs)",
}


def check_pca_parameters(cls, kwargs):
    """TypeError naming skae's equivalent for a PCA-only constructor argument."""
    for name in kwargs:
        if name in PCA_ONLY_PARAMETERS:
            raise TypeError(
                f"{cls.__name__} has no parameter {name!r} (a PCA parameter): "
                f"{PCA_ONLY_PARAMETERS[name]}. See doc/coming_from_pca.rst."
            )


def check_n_components(estimator):
    """Raise ``InvalidParameterError`` for PCA's non-integer ``n_components`` forms."""
    value = estimator.n_components
    if value is None:
        key = "None"
    elif isinstance(value, str) and value == "mle":
        key = "mle"
    elif isinstance(value, Real) and not float(value).is_integer() and 0 < value < 1:
        key = "float"
    else:
        return
    raise InvalidParameterError(
        f"The 'n_components' parameter of {type(estimator).__name__} must be an "
        f"int >= 1, got {value!r}: {_N_COMPONENTS[key]}."
    )


class PCACompatMixin:
    """``n_components``, parameter and attribute errors for code written for PCA."""

    def __new__(cls, *args, **kwargs):
        # Before __init__'s own "unexpected keyword" error: say what to use
        # instead of PCA's parameters. (Unpickling and clone call __new__
        # with no PCA names, so they are unaffected.)
        check_pca_parameters(cls, kwargs)
        return super().__new__(cls)

    def _validate_params(self):
        check_n_components(self)
        super()._validate_params()

    def __getattr__(self, name):
        # Only reached when normal lookup failed. A descriptor the class
        # defines (a property that raised) is re-run so that its own error
        # (NotFittedError, ...) is the one the caller sees.
        for klass in type(self).__mro__:
            attr = klass.__dict__.get(name)
            if attr is not None and hasattr(attr, "__get__"):
                return attr.__get__(self, type(self))
        if name in PCA_ONLY_ATTRIBUTES:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r} (a PCA attribute): "
                f"{PCA_ONLY_ATTRIBUTES[name]}."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
