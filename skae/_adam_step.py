"""``torch.optim.Adam(fused=True)``'s step, without the Python around its kernel.

On a small network ``Adam.step`` costs several times its fused kernel: the
step hooks and the profiler's record, switching grad mode, and for each
parameter group a scan of its parameters and their state, a regrouping of
the lists by device and dtype, and one increment per step counter (a CPU
foreach over scalar tensors, slower than the kernel itself). On iris
(4-100-2-100-4, one batch an epoch) that was about a fifth of an epoch.

:class:`AdamStep` runs the same update: the step counters are incremented
(one foreach op for every group) and ``torch._fused_adam_`` is called once
per group with the arguments ``Adam(fused=True).step`` passes (the group's
``lr``, ``betas``, ``weight_decay``, ``eps``, ``amsgrad`` and ``maximize``,
read at each step so that schedulers and skae's per-batch ``weight_decay``
apply), on the same tensors. Parameters and optimiser state are therefore
bit for bit what ``Adam.step`` gives, and the optimiser object, its
``state_dict`` and its pickles are unchanged: nothing but the call differs.

The tensor lists are made after the optimiser's own first step (which
creates the state lazily) and checked before each step: whenever a
gradient, a state or a parameter group is not the one listed (gradients set
to None, a state loaded or rolled back, a group added) the step goes through
``Adam.step``, which lists them again. :func:`plan` gives an
:class:`AdamStep` only where nothing else could see the call: the exact
``torch.optim.Adam`` class, no step hooks (an LR scheduler's counting
wrapper is one), every group fused, floats for ``lr`` and ``betas``, no
gradient scaler, every parameter on one device in one dtype.
"""

from operator import is_

import torch
from torch.optim import optimizer as _optimizer_globals


def _hooked(opt):
    """Whether anything wraps or listens to ``opt.step``."""
    return bool(
        "step" in opt.__dict__  # patched per instance (LR schedulers count calls)
        or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
        or _optimizer_globals._global_optimizer_pre_hooks
        or _optimizer_globals._global_optimizer_post_hooks
    )


def _plain_group(group):
    kernel = "_fused_adamw_" if group.get("decoupled_weight_decay") else "_fused_adam_"
    return (
        hasattr(torch, kernel)  # private: a torch without it keeps Adam.step
        and group.get("fused") and not group.get("differentiable", False)
        and type(group["lr"]) is float
        and all(type(b) is float for b in group["betas"])
    )


def plan(opt):
    """An :class:`AdamStep` for ``opt``, or None where ``opt.step()`` must run."""
    if type(opt) is not torch.optim.Adam or _hooked(opt):
        return None
    if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
        return None
    if not all(_plain_group(g) for g in opt.param_groups):
        return None
    params = [p for g in opt.param_groups for p in g["params"]]
    if not params or len({(p.device, p.dtype) for p in params}) != 1:
        return None
    return AdamStep(opt)


class AdamStep:
    """One step of ``opt`` (``torch.optim.Adam(fused=True)``) by its kernel.

    Call it where ``opt.step()`` would be called; see the module docstring.

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = torch.optim.Adam([w], lr=0.1, fused=True)
    >>> step = plan(opt)
    >>> for _ in range(2):
    ...     w.grad = torch.ones(3)
    ...     step()
    >>> w.detach()
    tensor([0.8000, 0.8000, 0.8000])
    >>> opt.state[w]["step"]
    tensor(2.)
    """

    def __init__(self, opt):
        self.opt = opt
        self.groups = None  # listed after the optimiser's own first step

    def _list(self):
        """``(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
        steps)`` per group, the counters, and what identifies the listing;
        None where a parameter has no gradient or no state."""
        opt, groups, steps, states = self.opt, [], [], []
        for group in opt.param_groups:
            params = list(group["params"])
            grads = [p.grad for p in params]
            state = [opt.state.get(p) for p in params]
            if any(g is None for g in grads) or not all(state):
                return None
            amsgrad = group["amsgrad"]
            groups.append((
                group, params, grads,
                [s["exp_avg"] for s in state], [s["exp_avg_sq"] for s in state],
                [s["max_exp_avg_sq"] for s in state] if amsgrad else [],
                [s["step"] for s in state],
            ))
            steps += groups[-1][-1]
            states += state
        ones = [torch.ones((), dtype=steps[0].dtype, device=steps[0].device)] * len(steps)
        return groups, (steps, ones), (opt.state, list(opt.param_groups), states)

    def _current(self):
        """Whether the listed tensors are still the optimiser's."""
        groups, _, (state, param_groups, states) = self.groups
        opt = self.opt
        if opt.state is not state or len(opt.param_groups) != len(groups):
            return False
        if not all(map(is_, opt.param_groups, param_groups)):
            return False
        at = 0
        for group, params, grads, *_ in groups:
            live = group["params"]
            if len(live) != len(params) or not all(map(is_, live, params)):
                return False
            if not all(map(is_, (p.grad for p in params), grads)):
                if not self._regrad(params, grads):
                    return False
            if not all(map(is_, map(state.get, params), states[at:at + len(params)])):
                return False
            at += len(params)
        return True

    @staticmethod
    def _regrad(params, grads):
        """Take the parameters' new gradient tensors (autograd makes new ones
        each step); False where one is missing."""
        new = [p.grad for p in params]
        if any(g is None for g in new):
            return False
        grads[:] = new
        return True

    def __call__(self):
        if self.groups is None or not self._current():
            self.opt.step()  # creates or relists the state, as Adam does
            self.groups = self._list()
            return
        groups, (steps, ones), _ = self.groups
        previous = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)  # as Adam.step (the context manager costs more)
        try:
            torch._foreach_add_(steps, ones)  # every counter + 1 (exact in float)
            for group, params, grads, avgs, sqs, max_sqs, counts in groups:
                if not params:
                    continue
                beta1, beta2 = group["betas"]
                decoupled = group.get("decoupled_weight_decay")
                kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
                kernel(
                    params, grads, avgs, sqs, max_sqs, counts,
                    amsgrad=group["amsgrad"], lr=group["lr"], beta1=beta1, beta2=beta2,
                    weight_decay=group["weight_decay"], eps=group["eps"],
                    maximize=group["maximize"], grad_scale=None, found_inf=None,
                )
        finally:
            torch._C._set_grad_enabled(previous)
