"""Fit-time warnings name the user's line, whatever the call path."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, StackedAE


@pytest.fixture
def X():
    return np.random.RandomState(0).rand(30, 4)


def _est(cls=AutoencoderTransformer, **params):
    return cls(2, hidden_layer_sizes=(4,), max_iter=1, random_state=0, **params)


CALLS = {
    "fit": lambda X: _est().fit(X),
    "fit_transform": lambda X: _est().fit_transform(X),
    "pipeline": lambda X: make_pipeline(StandardScaler(), _est()).fit(X),
    "stacked": lambda X: _est(StackedAE).fit_transform(X),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_convergence_warning_names_this_file(X, call):
    with pytest.warns(ConvergenceWarning) as record:
        call(X)
    assert {w.filename for w in record if w.category is ConvergenceWarning} == {__file__}


def test_batch_size_warning_names_this_file(X):
    with pytest.warns(UserWarning, match="batch_size=64") as record:
        _est(batch_size=64).fit(X)
    assert [w.filename for w in record if "batch_size" in str(w.message)] == [__file__]


def test_filter_by_the_users_module(X):
    # ``module=`` matches the module the warning is attributed to: the user's.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=ConvergenceWarning, module=__name__)
        with pytest.raises(ConvergenceWarning):
            _est().fit(X)


def test_search_in_process_names_this_file(X):
    with pytest.warns(ConvergenceWarning) as record:
        GridSearchCV(_est(), {"n_components": [1, 2]}, cv=2, n_jobs=1).fit(X)
    assert {w.filename for w in record} == {__file__}
