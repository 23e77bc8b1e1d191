"""What ``KeyboardInterrupt`` rolls a training call back to: the last epoch.

:class:`EpochSnapshot` copies what an epoch changes (the module's
parameters and buffers, tied weights once, and the optimiser's per-parameter
state) at the start of a training call and after every finished epoch, and
puts it back when the call is interrupted. On a small network that copy runs
every epoch, so it is made cheap: the copies live in buffers allocated on
the first call and reused while the live tensors are the same objects (about
three copies of the weights with Adam), the module's tensors are listed once
per training call, and the copy itself is one foreach op.
"""

from operator import is_

import torch
from torch import Tensor


def module_tensors(module):
    """The module's parameters and buffers (each once), detached."""
    return [t.detach() for t in module.state_dict(keep_vars=True).values()]


def _copy(state):
    return {k: v.detach().clone() if isinstance(v, Tensor) else v for k, v in state.items()}


class EpochSnapshot:
    """The module and optimiser state at the end of the last finished epoch.

    Parameters
    ----------
    module : torch.nn.Module
        The module being trained (its tensors are listed once, here).
    """

    def __init__(self, module):
        self.module = module_tensors(module)
        self.live = None  # the tensors copied: module's, then optimiser state's
        self.saved = None  # their copies, in the same order
        self.optim = None  # [(param, copy of its state dict)]
        self.scalars = False  # whether the optimiser state holds non-tensors
        self.n_rows = 0  # history rows at that point
        self.ready = False  # False while a copy is half-written

    def save(self, optimizer, n_rows):
        """Copy the live state (one foreach copy once the buffers exist)."""
        state = optimizer.state
        live = self.module + [v for s in state.values() for v in s.values() if isinstance(v, Tensor)]
        old = self.live
        # An interrupt while copying leaves the buffers half-written; the
        # live state is then the finished epoch itself, so it is kept.
        self.ready = False
        if old is None or len(old) != len(live) or not all(map(is_, live, old)):
            self.optim = [(p, _copy(s)) for p, s in state.items()]
            self.scalars = any(not isinstance(v, Tensor) for _, s in self.optim for v in s.values())
            self.saved = [t.clone() for t in self.module] + [
                v for _, s in self.optim for v in s.values() if isinstance(v, Tensor)
            ]
            self.live = live
        else:
            if self.scalars:
                for (_, kept), s in zip(self.optim, state.values()):
                    kept.update((k, v) for k, v in s.items() if not isinstance(v, Tensor))
            # One call for every tensor: on a small model, one copy_ per
            # tensor was about a tenth of the epoch.
            torch._foreach_copy_(self.saved, live)
        self.n_rows = n_rows
        self.ready = True

    def restore(self, module, optimizer, history):
        """Put the snapshot back into ``module``, ``optimizer`` and ``history``."""
        if not self.ready:
            return
        with torch.no_grad():
            for dst, src in zip(module_tensors(module), self.saved):
                dst.copy_(src)
        optimizer.state.clear()
        for p, saved in self.optim:
            optimizer.state[p] = _copy(saved)
        del history[self.n_rows:]
