"""Batches sliced from device tensors (``skae._batches``)."""

import torch

from skae._batches import BatchIterator, TensorData


def test_batches_cover_every_sample_once():
    X = torch.arange(23, dtype=torch.float32).reshape(-1, 1)
    torch.manual_seed(0)
    batches = list(BatchIterator(TensorData(X), batch_size=5, shuffle=True))
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([b[0] for b in batches]).ravel()
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))  # shuffled
    assert len(BatchIterator(TensorData(X), 5, True)) == 5


def test_unshuffled_batches_are_views():
    X = torch.randn(10, 3)
    (xb, yb), *_ = BatchIterator(TensorData(X), batch_size=4, shuffle=False)
    assert yb is None
    assert xb.data_ptr() == X.data_ptr()


def test_index_subset_and_targets():
    X = torch.arange(10, dtype=torch.float32).reshape(-1, 1)
    y = torch.arange(10)
    idx = torch.tensor([1, 3, 5, 7])
    data = TensorData(X, y, idx)
    assert len(data) == 4
    torch.manual_seed(1)
    out = list(BatchIterator(data, batch_size=3, shuffle=True))
    xs = torch.cat([b[0] for b in out]).ravel()
    ys = torch.cat([b[1] for b in out])
    assert sorted(xs.tolist()) == [1.0, 3.0, 5.0, 7.0]
    assert torch.equal(xs.long(), ys)


def test_one_batch_of_every_row_is_a_view_and_draws_nothing():
    # Shuffling one batch that holds every row would change no mean: the
    # batch is the data (a view, or the index subset), and the fit's
    # generator is not advanced.
    from skae._rng import current, fit_generators

    X = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    y = torch.arange(6)
    with fit_generators(0):
        before = current(X.device).get_state()
        ((xb, yb),) = BatchIterator(TensorData(X, y), batch_size=6, shuffle=True)
        assert torch.equal(current(X.device).get_state(), before)
        ((xs, ys),) = BatchIterator(TensorData(X, y, torch.tensor([4, 1])), 10, True)
    assert xb.data_ptr() == X.data_ptr() and torch.equal(xb, X) and torch.equal(yb, y)
    assert torch.equal(xs, X[[4, 1]]) and torch.equal(ys, torch.tensor([4, 1]))
