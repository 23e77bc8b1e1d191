"""The fitted-state protocol shared by pickling and ``.skae`` files."""

import pickle

import numpy as np
import pytest
import torch
from _helpers import fast_estimator, public_estimators
from numpy.testing import assert_array_equal


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_state_holds_plain_values_and_rebuilds_an_equal_estimator(cls, digits):
    X, _ = digits
    est = fast_estimator(cls, n_components=3).fit(X[:200])
    state = est._get_fitted_state()
    assert not set(state["attributes"]) & est._transient_attributes
    assert not set(state["attributes"]) & set(est.get_params())
    tensors = [v for v in state["module_state"].values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    twin = fast_estimator(cls, n_components=3)
    twin._set_fitted_state(state, "cpu")
    assert_array_equal(twin.transform(X[:50]), est.transform(X[:50]))
    # pickling goes through the same state, never through the skorch net
    blob = pickle.dumps(est)
    assert b"skorch" not in blob and b"AutoencoderNet" not in blob
    assert_array_equal(pickle.loads(blob).transform(X[:50]), est.transform(X[:50]))


def test_state_rejects_forbidden_attributes_and_wrong_weights(digits):
    from skae import AutoencoderTransformer

    X, _ = digits
    est = fast_estimator(AutoencoderTransformer).fit(X[:100])
    state = est._get_fitted_state()
    for key in ("transform", "__class__", "max_iter", "_net", "not an identifier"):
        bad = dict(state, attributes={**state["attributes"], key: 1})
        with pytest.raises(ValueError, match="forbidden attribute"):
            fast_estimator(AutoencoderTransformer)._set_fitted_state(bad, "cpu")
    wrong = {k: torch.zeros(1) for k in state["module_state"]}
    with pytest.raises(ValueError, match="weights do not fit"):
        fast_estimator(AutoencoderTransformer)._set_fitted_state(
            dict(state, module_state=wrong), "cpu"
        )
    assert np.isfinite(est.score(X[:10]))
