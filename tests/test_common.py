"""scikit-learn's estimator checks over every public skae estimator."""

import inspect

import pytest
from _helpers import fast_estimator, public_estimators
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae._base import _BaseAutoencoder



def _public_estimators():
    return public_estimators()


def _fast_instance(cls):
    return fast_estimator(cls)


# Expected failures, each with its reason. Keep this empty unless a check
# cannot pass for a reason that belongs to the estimator's nature.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [_fast_instance(cls) for cls in _public_estimators()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# Base defaults an estimator changes, each with its reason. Keep it short.
CHANGED_DEFAULTS = {
    # A hash code is a probability per bit: the code layer is logistic, and
    # 'logistic' is the only value SemanticHashing accepts.
    "SemanticHashing": {"code_activation": "logistic"},
}


@pytest.mark.parametrize("cls", _public_estimators(), ids=lambda c: c.__name__)
def test_signature_extends_base(cls):
    """Every estimator exposes the base parameters with the base defaults."""
    base = inspect.signature(_BaseAutoencoder).parameters
    own = inspect.signature(cls).parameters
    changed = CHANGED_DEFAULTS.get(cls.__name__, {})
    for name, param in base.items():
        assert name in own, f"{cls.__name__} lacks parameter {name!r}"
        assert own[name].default == changed.get(name, param.default), name
        assert own[name].kind == param.kind, name
    assert set(own) - set(base) <= set(cls._parameter_constraints)
