"""AutoencoderNet's shortcuts give the same state as the general path."""

import numpy as np
import torch
from skorch.callbacks import Callback

from skae import AutoencoderTransformer


class CompareSnapshot(Callback):
    """At each epoch start, the rollback snapshot equals the live state."""

    def initialize(self):
        self.checked_ = 0
        return self

    def on_epoch_begin(self, net, **kwargs):
        snapshot = net.__dict__.get("_snapshot")
        if snapshot is None or not net.optimizer_.state:
            return
        live = [t.detach() for t in net.module_.state_dict(keep_vars=True).values()]
        for saved, now in zip(snapshot.saved, live, strict=False):
            assert torch.equal(saved, now)
        assert len(snapshot.saved) == len(live) + sum(len(s) for s in net.optimizer_.state.values())
        for (p, saved), (q, now) in zip(snapshot.optim, net.optimizer_.state.items(), strict=True):
            assert p is q
            for k, v in now.items():
                assert torch.equal(saved[k], v) if torch.is_tensor(v) else saved[k] == v
        self.checked_ += 1


def test_epoch_snapshot_matches_live_state():
    # The rollback snapshot is refreshed with one foreach copy per epoch.
    X = np.random.RandomState(0).rand(60, 5)
    cb = CompareSnapshot()
    est = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=4, random_state=0,
                                 device="cpu", callbacks=[cb], alpha=1e-3)
    est.fit(X)
    assert est._net.callbacks_[-1][1].checked_ == 3  # epochs 2-4, after a foreach copy


def test_training_mode_set_once_and_results_unchanged():
    # _set_training skips Module.train when the mode is already set: the
    # module trains in train mode, is left in eval mode, and a refit with
    # the same seed gives the same weights.
    X = np.random.RandomState(0).rand(60, 5)
    modes = []

    class Modes(Callback):
        def on_epoch_end(self, net, **kwargs):
            modes.append(all(m.training for m in net.module_.modules()))

    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")
    a = AutoencoderTransformer(2, callbacks=[Modes()], **params).fit(X)
    b = AutoencoderTransformer(2, **params).fit(X)
    assert modes == [True, True, True]
    assert not any(m.training for m in a.module_.modules())
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)
