"""Every public method of every estimator against a matrix of bad inputs (issue #9).

Each bad call must raise a ValueError or TypeError whose message names the
problem, and must leave a fitted estimator exactly as it was: the same
fitted attributes (the same objects), the same weights, the same outputs.
Property-based tests (hypothesis) then try random shapes and dtypes.
"""

import inspect
import warnings
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _helpers import fast_estimator, public_estimators
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skae._validation import Interval, StrOptions

ESTIMATORS = public_estimators()
make = partial(fast_estimator, n_components=3, max_iter=2, pretrain_max_iter=1)
K = 3  # the code width of make()
ids = pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)



def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:120], y[:120]


X_REF, Y_REF = _digits()
PROBE = X_REF[:20] / 16.0  # in [0, 1]: valid for loss='log_loss' models too
_FITTED = {}


def fitted(cls, **kw):
    """One fitted estimator per configuration, shared by the tests (bad calls
    must not change it; every test checks that they did not)."""
    key = (cls, tuple(sorted(kw.items())))
    if key not in _FITTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            X = X_REF / 16.0 if kw.get("loss") == "log_loss" else X_REF
            _FITTED[key] = make(cls, **kw).fit(X, Y_REF)
    return _FITTED[key]



class _Unchanged:
    """Record a fitted estimator; ``check()`` asserts nothing moved."""

    def __init__(self, est):
        self.est = est
        self.params = est.get_params(deep=False)
        self.attrs = {k: v for k, v in vars(est).items() if k not in self.params}
        self.weights = [t.detach().clone() for t in est.module_.state_dict().values()]
        self.codes, self.recon, self.scores = self._outputs()

    def _outputs(self):
        with warnings.catch_warnings():
            # An estimator fitted on a DataFrame is probed with an array.
            warnings.filterwarnings("ignore", "X does not have valid feature names")
            codes = self.est.transform(PROBE)
            return (
                codes,
                self.est.inverse_transform(codes),
                self.est.score_samples(PROBE),
            )

    def check(self):
        est = self.est
        est.set_params(**self.params)
        now = {k: v for k, v in vars(est).items() if k not in self.params}
        assert now.keys() == self.attrs.keys()
        for k, v in self.attrs.items():
            assert now[k] is v, f"fitted attribute {k} was replaced"
        assert all(
            torch.equal(a, b.detach())
            for a, b in zip(self.weights, est.module_.state_dict().values())
        )
        for before, after in zip(
            (self.codes, self.recon, self.scores), self._outputs()
        ):
            assert_array_equal(after, before)


def expect_clear_error(est, call, match):
    """``call()`` raises ValueError/TypeError matching ``match``; est unchanged."""
    guard = _Unchanged(est)
    with pytest.raises((ValueError, TypeError), match=match):
        call()
    guard.check()


# ----------------------------------------------------------------------
# the matrix of bad arrays
# ----------------------------------------------------------------------
def _with(value, width, dtype=float):
    X = np.ones((5, width), dtype=dtype)
    X[2, width // 2] = value
    return X


def _object(value, width):
    X = np.ones((5, width)).astype(object)
    X[1, 0] = value
    return X


BAD_ARRAYS = {
    # name: (builder(width) -> X, regex the message must match)
    "nan": (lambda w: _with(np.nan, w), "NaN"),
    "+inf": (lambda w: _with(np.inf, w), "infinity"),
    "-inf": (lambda w: _with(-np.inf, w), "infinity"),
    "object-None": (lambda w: _object(None, w), "NaN"),
    "object-dict": (
        lambda w: _object({"a": 1}, w),
        r"float\(\) argument|could not convert",
    ),
    "object-string": (lambda w: _object("x", w), "could not convert string to float"),
    "complex": (lambda w: np.ones((5, w)) + 1j, "Complex data not supported"),
    "strings": (lambda w: np.full((5, w), "a"), "could not convert string to float"),
    "bytes": (lambda w: np.full((5, w), b"a"), "could not convert string to float"),
    "empty-rows": (lambda w: np.ones((0, w)), r"0 sample\(s\)"),
    "empty-features": (lambda w: np.ones((5, 0)), r"0 feature\(s\)"),
    "1-D": (lambda w: np.ones(w), "Expected 2D array, got 1D array"),
    "3-D": (lambda w: np.ones((5, w, 2)), "dim 3"),
    "scalar": (lambda w: 3.0, "Expected 2D array, got scalar array"),
    "csr": (lambda w: sp.csr_matrix(np.ones((5, w))), "Sparse data was passed"),
    "coo-array": (lambda w: sp.coo_array(np.ones((5, w))), "Sparse data was passed"),
    "ragged": (lambda w: [[1.0] * w, [1.0] * (w - 1)], "inhomogeneous"),
    "wrong-width": (lambda w: np.ones((5, w + 1)), "features"),
}


def _methods(cls):
    """Public methods taking an X, with the width each expects."""
    names = [
        "fit",
        "partial_fit",
        "fit_transform",
        "transform",
        "score",
        "score_samples",
        "inverse_transform",
        "denoise",
        "jacobian",
    ]
    return [m for m in names if hasattr(cls, m)]


MATRIX = [
    pytest.param(cls, method, case, id=f"{cls.__name__}-{method}-{case}")
    for cls in ESTIMATORS
    for method in _methods(cls)
    for case in BAD_ARRAYS
    # Refitting on a new width is legitimate; continuing on it is not.
    if not (case == "wrong-width" and method in ("fit", "fit_transform"))
    # Sparse X is data (densified batch by batch); sparse codes are not.
    and not (case in ("csr", "coo-array") and method != "inverse_transform")
]


@pytest.mark.parametrize("cls, method, case", MATRIX)
def test_bad_array_is_a_clear_error_and_changes_nothing(cls, method, case):
    est = fitted(cls)
    build, match = BAD_ARRAYS[case]
    width = K if method == "inverse_transform" else X_REF.shape[1]
    if case == "wrong-width":
        match = (
            rf"X has {K + 1} features.*n_components={K}"
            if method == "inverse_transform"
            else rf"X has {width + 1} features.*expecting {width} features"
        )
    expect_clear_error(est, lambda: getattr(est, method)(build(width)), match)


@ids
def test_methods_before_fit_raise_not_fitted(cls):
    est = make(cls)
    calls = {
        m: (X_REF[:, :K] if m == "inverse_transform" else X_REF)
        for m in _methods(cls)
        if m not in ("fit", "partial_fit", "fit_transform")
    }
    for method, arg in calls.items():
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(est, method)(arg)
    if hasattr(est, "sample"):
        with pytest.raises(NotFittedError, match="not fitted"):
            est.sample(2)
    with pytest.raises(NotFittedError, match="not fitted"):
        est.save("never-written.skae")


@ids
def test_feature_names_must_match(cls):
    pd = pytest.importorskip("pandas")
    est = make(cls)
    df = pd.DataFrame(X_REF, columns=[f"px{i}" for i in range(64)])
    est.fit(df, Y_REF)
    renamed = df.rename(columns={"px3": "other"})
    for method in ("transform", "score_samples", "partial_fit"):
        expect_clear_error(
            est, lambda m=method: getattr(est, m)(renamed), "feature names"
        )


# ----------------------------------------------------------------------
# data that does not fit the model's settings
# ----------------------------------------------------------------------
def _rescaled(X):
    return X / 16.0  # digits: 0..16 -> [0, 1]


DATA_PROBLEMS = {
    "single-feature": (
        {},
        lambda: (np.ones((10, 1)),),
        r"n_components=3 must be between 1 and n_features=1",
    ),
    "more-components-than-features": (
        {},
        lambda: (X_REF[:, :2],),
        r"n_components=3 must be between 1 and n_features=2",
    ),
    "beyond-float32": ({}, lambda: (_with(1e300, 64),), r"float32 range"),
    "log_loss-outside-0-1": (
        {"loss": "log_loss"},
        lambda: (X_REF,),
        r"loss='log_loss' needs every value of X in \[0, 1\]",
    ),
    "early-stopping-one-sample": (
        {"early_stopping": True},
        lambda: (X_REF[:1],),
        r"early_stopping=True needs at least 2 samples",
    ),
}


@ids
@pytest.mark.parametrize("case", DATA_PROBLEMS)
@pytest.mark.parametrize("method", ["fit", "fit_transform", "partial_fit"])
def test_data_the_settings_cannot_use(cls, case, method):
    params, data, match = DATA_PROBLEMS[case]
    if method == "partial_fit" and params.get("early_stopping"):
        # Either check may fire first; both name early_stopping.
        match = "early_stopping=True needs at least 2|partial_fit does not support"
    est = fitted(cls)
    old = est.get_params(deep=False)
    est.set_params(**params)
    # A fresh estimator with those settings fails before allocating anything.
    fresh = make(cls, **params)
    with pytest.raises(ValueError, match=match):
        getattr(fresh, method)(*data())
    assert not hasattr(fresh, "module_")
    est.set_params(**old)
    if method != "partial_fit":  # a fitted estimator would continue on 64 features
        expect_clear_error(
            est, lambda: getattr(est.set_params(**params), method)(*data()), match
        )


@ids
def test_log_loss_model_scores_only_data_in_0_1(cls):
    est = fitted(cls, loss="log_loss")
    assert np.isfinite(est.score(_rescaled(X_REF)))
    for method in ("score", "score_samples"):
        expect_clear_error(
            est,
            lambda m=method: getattr(est, m)(X_REF),
            r"loss='log_loss' scores data in \[0, 1\]",
        )


@ids
def test_a_single_sample_is_valid(cls):
    """One sample is not an error: fit works (its normalisation is the
    identity up to the mean) and transform of one row equals that row of a
    batch transform."""
    est = make(cls).fit(X_REF[:1])
    assert est.transform(X_REF[:1]).shape == (1, K)
    est = fitted(cls)
    Z = est.transform(X_REF[:10])
    for i in range(10):
        assert_allclose(
            est.transform(X_REF[i : i + 1])[0], Z[i], rtol=1e-12, atol=1e-12
        )


# ----------------------------------------------------------------------
# invalid hyperparameters, of every kind
# ----------------------------------------------------------------------
class _BadType:
    """A value of a type no constraint accepts."""

    def __repr__(self):
        return "BadType()"


def _invalid_values(constraints):
    """Values that violate every constraint in the list."""
    candidates = [_BadType()]
    for c in constraints:
        if isinstance(c, Interval):
            if c.left is not None:
                candidates.append(c.left - 1)
                if c.closed in ("right", "neither"):
                    candidates.append(c.left)
            if c.right is not None:
                candidates.append(c.right + 1)
                if c.closed in ("left", "neither"):
                    candidates.append(c.right)
            if c.type is not float and c.type.__name__ == "Integral":
                candidates.append(1.5)
        elif isinstance(c, StrOptions):
            candidates.append("not-an-option")
        elif c == "boolean":
            candidates.append("yes")
        elif c in ("random_state", "verbose"):
            candidates.append("loud")
    return candidates


def _hyperparameter_cases():
    cases = []
    for cls in ESTIMATORS:
        for name, constraints in cls._parameter_constraints.items():
            for value in _invalid_values(constraints):
                is_bad = not any(_satisfies(c, value) for c in constraints)
                if is_bad:
                    cases.append(
                        pytest.param(
                            cls,
                            {name: value},
                            rf"'{name}' parameter",
                            id=f"{cls.__name__}-{name}={value!r}",
                        )
                    )
    data_dependent = [
        (
            {"hidden_layer_sizes": (8, 0)},
            "hidden_layer_sizes must be positive integers",
        ),
        (
            {"hidden_layer_sizes": (8, -2)},
            "hidden_layer_sizes must be positive integers",
        ),
        (
            {"hidden_layer_sizes": (8.5,)},
            "hidden_layer_sizes must be positive integers",
        ),
        (
            {"hidden_layer_sizes": ("a",)},
            "hidden_layer_sizes must be positive integers",
        ),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": "cuda:7"}, "device='cuda:7'"),
        ({"device": "not a device"}, "device='not a device'"),
        ({"loss": "log_loss", "output_activation": "tanh"}, "output_activation='tanh'"),
        ({"loss": "log_loss", "normalize": "feature"}, "normalize='feature'"),
        ({"noise": "masking", "noise_level": 1.5}, "noise_level=1.5"),
        ({"noise": "salt_and_pepper", "noise_level": 1.5}, "noise_level=1.5"),
    ]
    for cls in ESTIMATORS:
        own = set(inspect.signature(cls).parameters)
        for params, match in data_dependent:
            if not set(params) <= own:
                continue
            if "noise" in params and params["noise"] not in _noise_options(cls):
                continue
            if (
                params.get("device", "").startswith("cuda")
                and torch.cuda.device_count() > 7
            ):
                continue
            cases.append(
                pytest.param(
                    cls,
                    params,
                    match,
                    id=f"{cls.__name__}-{'-'.join(map(str, params.values()))}",
                )
            )
    return cases


def _noise_options(cls):
    constraint = cls._parameter_constraints.get("noise", [])
    return set().union(*(c.options for c in constraint if isinstance(c, StrOptions)))


def _satisfies(constraint, value):
    if isinstance(constraint, (Interval, StrOptions)):
        return constraint.is_satisfied_by(value)
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "random_state":
        return value is None or isinstance(value, (int, np.random.RandomState))
    if constraint == "verbose":
        return isinstance(value, (int, bool, np.bool_))
    if constraint == "array-like":
        return hasattr(value, "__len__") or hasattr(value, "__array__")
    return False


@pytest.mark.parametrize("cls, params, match", _hyperparameter_cases())
def test_invalid_hyperparameter_is_a_clear_error_and_changes_nothing(
    cls, params, match
):
    est = fitted(cls)
    # Unfitted: fails before any allocation.
    fresh = make(cls, **params)
    with pytest.raises((ValueError, TypeError), match=match):
        fresh.fit(X_REF, Y_REF)
    assert not hasattr(fresh, "module_") and not hasattr(fresh, "n_features_in_")
    # Fitted: the failed refit (and warm start) leaves the model as it was.
    expect_clear_error(est, lambda: est.set_params(**params).fit(X_REF, Y_REF), match)
    expect_clear_error(
        est,
        lambda: est.set_params(**{"warm_start": True, **params}).fit(X_REF, Y_REF),
        match,
    )


@ids
def test_changing_the_architecture_cannot_continue(cls):
    est = fitted(cls)
    expect_clear_error(
        est,
        lambda: est.set_params(warm_start=True, hidden_layer_sizes=(5,)).fit(
            X_REF, Y_REF
        ),
        r"Cannot continue training after changing hidden_layer_sizes.*warm_start=False",
    )
    expect_clear_error(
        est,
        lambda: est.set_params(n_components=2).partial_fit(X_REF, Y_REF),
        r"Cannot continue training after changing n_components",
    )


# ----------------------------------------------------------------------
# variant-specific inputs
# ----------------------------------------------------------------------
def _with_method(name):
    return [c for c in ESTIMATORS if hasattr(c, name)]


@pytest.mark.parametrize("cls", _with_method("sample"), ids=lambda c: c.__name__)
@pytest.mark.parametrize("n_samples", [0, -1, 2.5, "3", None, np.float64(2.0)])
def test_sample_rejects_bad_counts(cls, n_samples):
    est = fitted(cls)
    expect_clear_error(est, lambda: est.sample(n_samples), "n_samples")


@pytest.mark.parametrize("cls", _with_method("sample"), ids=lambda c: c.__name__)
def test_sample_rejects_bad_random_state(cls):
    est = fitted(cls)
    expect_clear_error(est, lambda: est.sample(2, random_state="seed"), "seed")
    assert est.sample(np.int64(2), random_state=0).shape == (2, 64)


STACKED = [c for c in ESTIMATORS if c.__name__ == "StackedAE"]

BAD_LABELS = {
    "too-short": (lambda y: y[:50], "inconsistent numbers of samples: \\[120, 50\\]"),
    "too-long": (
        lambda y: np.r_[y, y],
        "inconsistent numbers of samples: \\[120, 240\\]",
    ),
    "continuous": (
        lambda y: np.linspace(0, 1, len(y)),
        "Unknown label type: continuous",
    ),
    "two-columns": (lambda y: np.c_[y, y], "y should be a 1d array"),
    "nan": (
        lambda y: np.where(np.arange(len(y)) == 3, np.nan, y),
        "Input y contains NaN",
    ),
    "one-class": (lambda y: np.zeros(len(y)), "at least 2 classes in y, got 1"),
    "objects": (lambda y: np.array([{}] * len(y), dtype=object), "Unknown label type"),
    "mixed-types": (
        lambda y: np.array([1, "a"] * (len(y) // 2), dtype=object),
        "Unknown label type",
    ),
    "sparse": (
        lambda y: sp.csr_matrix(y.reshape(-1, 1)),
        "Sparse data was passed for y",
    ),
    "missing": (lambda y: None, "needs the class labels y"),
}


@pytest.mark.parametrize("cls", STACKED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("fine_tune", ["classification", "nca"])
@pytest.mark.parametrize("case", BAD_LABELS)
def test_stacked_bad_labels(cls, fine_tune, case):
    build, match = BAD_LABELS[case]
    est = fitted(cls, fine_tune=fine_tune)
    expect_clear_error(est, lambda: est.fit(X_REF, build(Y_REF)), match)
    if case != "one-class":  # a chunk of one known class is fine for partial_fit
        expect_clear_error(est, lambda: est.partial_fit(X_REF, build(Y_REF)), match)
    unseen = np.where(Y_REF == 3, 42, Y_REF)
    expect_clear_error(
        est, lambda: est.partial_fit(X_REF, unseen), r"labels not seen.*\[42\]"
    )


# ----------------------------------------------------------------------
# property-based: random shapes and dtypes
# ----------------------------------------------------------------------
PROPERTY = settings(
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
NUMERIC = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]


@st.composite
def datasets(draw):
    n_samples = draw(st.integers(1, 30))
    n_features = draw(st.integers(1, 10))
    dtype = np.dtype(draw(st.sampled_from(NUMERIC)))
    if dtype.kind == "f":
        elements = st.floats(-1e3, 1e3, width=8 * min(dtype.itemsize, 4))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        elements = st.integers(0, 255)
    X = draw(hnp.arrays(dtype, (n_samples, n_features), elements=elements))
    n_components = draw(st.integers(1, n_features))
    cls = draw(st.sampled_from(ESTIMATORS))
    return cls, X, n_components


@PROPERTY
@given(datasets())
def test_transform_inverse_transform_round_trip(case):
    cls, X, k = case
    est = make(cls, n_components=k, hidden_layer_sizes=(4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    out_dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    # Binary codes (SemanticHashing) are uint8 and decode to float64.
    binary = not est.__sklearn_tags__().transformer_tags.preserves_dtype
    Z = est.transform(X)
    assert Z.shape == (X.shape[0], k) and Z.dtype == (np.uint8 if binary else out_dtype)
    assert np.all(np.isfinite(Z))
    R = est.inverse_transform(Z)
    assert R.shape == X.shape and R.dtype == (np.float64 if binary else out_dtype)
    assert np.all(np.isfinite(R))
    assert est.score_samples(X).shape == (X.shape[0],)
    # Row by row equals the batch (float64: subset invariance at 1e-7).
    tol = 1e-4 if out_dtype == np.float32 else 1e-7
    Z1 = np.concatenate([est.transform(X[i : i + 1]) for i in range(len(X))])
    assert_allclose(Z1, Z, rtol=tol, atol=tol * (1 + np.abs(Z).max()))
    # Codes of the other float dtype and any number of rows decode too.
    other = np.float32 if out_dtype == np.float64 else np.float64
    assert est.inverse_transform(Z[:1].astype(other)).dtype == other


ANY_DTYPE = (
    hnp.scalar_dtypes()
    | hnp.byte_string_dtypes()
    | hnp.unicode_string_dtypes()
    | st.just(np.dtype(object))
)


@PROPERTY
@given(cls=st.sampled_from(ESTIMATORS), dtype=ANY_DTYPE, data=st.data())
def test_any_dtype_is_accepted_or_clearly_rejected(cls, dtype, data):
    """Whatever the dtype and values: a result of the right shape, or a
    ValueError/TypeError (never another exception, never a change)."""
    est = fitted(cls)
    if dtype == np.dtype(object):
        X = data.draw(
            hnp.arrays(
                dtype,
                (4, 64),
                elements=st.one_of(
                    st.floats(allow_nan=True),
                    st.text(max_size=2),
                    st.none(),
                    st.integers(-5, 5),
                ),
            )
        )
    else:
        X = data.draw(hnp.arrays(dtype, (4, 64)))
    guard = _Unchanged(est)
    for method, arg in (
        ("transform", X),
        ("inverse_transform", X[:, :K]),
        ("score_samples", X),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", RuntimeWarning
                )  # overflow of huge values
                out = getattr(est, method)(arg)
        except (ValueError, TypeError) as exc:
            assert str(exc)
        else:
            assert out.shape[0] == 4
    guard.check()
