"""Device and data checks (``skae._validation``)."""

import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer
from skae._validation import (
    check_float32_range,
    check_log_loss_settings,
    check_unit_interval,
    resolve_device,
)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_request_without_gpu_is_a_clear_error(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="CUDA is not available"):
        AutoencoderTransformer(device="cuda", max_iter=1).fit(X)
    assert AutoencoderTransformer(max_iter=1, random_state=0).fit(X).device_ == "cpu"


def test_resolve_device_names_the_bad_value():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device='garbage' is not a valid torch device"):
        resolve_device("garbage")
    with pytest.raises(ValueError, match="device='meta' is not supported"):
        resolve_device("meta")


def test_unit_interval_and_float32_range_checks():
    check_unit_interval(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"needs every value of X in \[0, 1\]; got values in \[-1, 1\]"):
        check_unit_interval(np.array([[-1.0, 1.0]]))
    with pytest.raises(ValueError, match="scores data in"):
        check_unit_interval(np.array([[2.0]]), "scores")
    check_float32_range(np.array([[3e38]], dtype=np.float64))
    with pytest.raises(ValueError, match="beyond the float32 range"):
        check_float32_range(np.array([[1e39]]))
    check_float32_range(np.array([[np.float32(1e38)]], dtype=np.float32))


def test_log_loss_settings():
    check_log_loss_settings(None, "auto")
    with pytest.raises(ValueError, match="output_activation='tanh'"):
        check_log_loss_settings("tanh", None)
    with pytest.raises(ValueError, match="normalize='feature'"):
        check_log_loss_settings("logistic", "feature")
