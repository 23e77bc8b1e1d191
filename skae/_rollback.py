"""What ``KeyboardInterrupt`` rolls a training call back to: the last epoch.

:class:`EpochSnapshot` copies what an epoch changes (the module's
parameters and buffers, tied weights once, and the optimiser's per-parameter
state) at the start of a training call and after every finished epoch, and
puts it back when the call is interrupted. On a small network that copy runs
every epoch, so it is made cheap: the copies live in buffers allocated on
the first call and reused while the live tensors are the same objects (about
three copies of the weights with Adam), the module's tensors are listed once
per training call, and the copy itself is one op (a concatenation into one
buffer whose views are the copies).
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
        self.flat = None  # the one buffer the copies are views of (or None)
        self.sources = None  # the live tensors, flattened (views)
        self.optim = None  # [(param, copy of its state dict)]
        self.scalars = False  # whether the optimiser state holds non-tensors
        self.n_rows = 0  # history rows at that point
        self.ready = False  # False while a copy is half-written

    def save(self, optimizer, n_rows):
        """Copy the live state (one op once the buffers exist)."""
        state = optimizer.state
        live = self.module + [
            v for s in state.values() for v in s.values() if isinstance(v, Tensor)
        ]
        old = self.live
        # An interrupt while copying leaves the buffers half-written; the
        # live state is then the finished epoch itself, so it is kept.
        self.ready = False
        if old is None or len(old) != len(live) or not all(map(is_, live, old)):
            self._allocate(state, live)
        else:
            if self.scalars:
                for (_, kept), s in zip(self.optim, state.values()):
                    kept.update((k, v) for k, v in s.items() if not isinstance(v, Tensor))
            self._copy_in()
        self.n_rows = n_rows
        self.ready = True

    def _allocate(self, state, live):
        """Buffers for ``live`` (one flat tensor where they allow), filled."""
        self.live = live
        flat = len({(t.dtype, t.device) for t in live}) == 1 and all(
            t.is_contiguous() for t in live
        )
        if flat:  # copies are views of one buffer, filled by one torch.cat
            self.flat = torch.empty(sum(t.numel() for t in live), dtype=live[0].dtype,
                                    device=live[0].device)
            self.sources = [t.view(-1) for t in live]
            chunks = self.flat.split([t.numel() for t in live])
            self.saved = [c.view(t.shape) for c, t in zip(chunks, live)]
            self._copy_in()
        else:
            self.flat = None
            self.saved = [t.clone() for t in live]
        saved = iter(self.saved[len(self.module):])
        self.optim = [
            (p, {k: next(saved) if isinstance(v, Tensor) else v for k, v in s.items()})
            for p, s in state.items()
        ]
        self.scalars = any(not isinstance(v, Tensor) for _, s in self.optim for v in s.values())

    def _copy_in(self):
        # One call for every tensor: on a small model, one copy_ per tensor
        # was about a tenth of the epoch (a foreach copy: still ~0.3 us a
        # tensor on the CPU, a concatenation into one buffer: one op).
        if self.flat is not None:
            torch.cat(self.sources, out=self.flat)
        else:
            torch._foreach_copy_(self.saved, self.live)

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
