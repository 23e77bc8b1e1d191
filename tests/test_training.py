"""The fit driver's pieces (``skae._training``)."""

import numpy as np
import torch
from numpy.testing import assert_array_equal

from skae import AutoencoderTransformer
from skae._training import device_tensor, draw_split, resume_net, seeded


def test_seeded_scope_is_reproducible_and_leaves_the_global_stream():
    # The scope's draws come from its own generator (skae._rng.current), not
    # from torch's global one, which the scope never seeds nor advances.
    from skae._rng import current

    torch.manual_seed(7)
    before = torch.get_rng_state()
    with seeded(3, "cpu"):
        a = torch.rand(4, generator=current("cpu"))
        train_a, _ = draw_split(10, 3, "cpu")
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(3, "cpu"):
        b = torch.rand(4, generator=current("cpu"))
        train_b, _ = draw_split(10, 3, "cpu")
    assert torch.equal(a, b) and torch.equal(train_a, train_b)
    assert torch.equal(torch.get_rng_state(), before)
    assert current("cpu") is None  # outside a fit: torch's own generator


def test_split_partitions_the_rows():
    with seeded(0, "cpu"):
        train, valid = draw_split(10, 3, "cpu")
    assert len(valid) == 3 and len(train) == 7
    assert sorted(torch.cat([train, valid]).tolist()) == list(range(10))


def test_device_tensor_reuses_an_owned_float32_array_on_the_cpu():
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    owned = device_tensor(X, "cpu", owned=True)
    assert owned.data_ptr() == X.ctypes.data  # the array itself, no copy
    copied = device_tensor(X, "cpu")
    assert copied.data_ptr() != X.ctypes.data
    assert_array_equal(device_tensor(X.astype(np.float64), "cpu").numpy(), X)


def test_resumed_net_shares_the_history_and_copies_the_rest(digits):
    X, _ = digits
    est = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2, device="cpu",
                                 random_state=0).fit(X)
    net = resume_net(est._net, est)
    assert net.history is est._net.history
    assert net.module_ is not est.module_ and net.objective is est
    assert all(torch.equal(a, b) for a, b in zip(net.module_.parameters(),
                                                 est.module_.parameters()))
