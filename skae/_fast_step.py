"""A hand-written forward and backward pass for the plain MLP autoencoder.

On small data a training step of a small network costs what its torch
operations cost to dispatch, not what they compute: autograd records a graph
node per operation, then walks it, and accumulates every gradient through
its own buffers. :class:`FastStep` computes the same loss and the same
gradients, bit for bit, with fewer operations and no autograd at all:

* forward: one ``addmm`` per linear layer (tied layers included) and the
  activations in place on its fresh output; the inputs of the linear layers
  and the activations' outputs are kept for the backward pass;
* loss: its value with the objective's own ops; its gradient with respect
  to the decoder's pre-activation in closed form, as autograd's backward
  computes it (``(1/n) 2 (f(z) - x)`` then ``f'`` for ``'squared_error'``
  with output activation ``f``, ``(sigmoid(z) - x) / n`` for
  ``'log_loss'``);
* backward: per linear layer one ``mm`` written straight into the weight's
  ``.grad`` (in autograd's orientation; a tied weight's second product is
  added to it, as autograd's input buffer does), one ``sum`` into the
  bias's ``.grad`` and one ``mm`` for the layer's input; the activations'
  derivatives from their outputs in one op each;
* all of it under inference mode (the same kernels without the autograd
  dispatch layer, about 7% of the step on iris), the ``.grad`` tensors
  allocated outside it (they outlive the step); the transposed weight
  views are made once per training call, not per step.

MLP's ``alpha`` penalty enters as in the autograd path: its value is added
to the loss, its gradient is the optimiser's ``weight_decay``. The optimiser's
update is unchanged (:mod:`skae._adam_step` only calls its kernel
directly). :func:`plan` decides whether a net may use the fast step (the
plain :class:`~skae._modules.Autoencoder`, the plain objective, no listener
to per-batch events, one process) and returns None otherwise, so that every
other case takes autograd. Because both paths compute the same
numbers, a fit does not depend on which one ran (a DenoisingAE with zero
noise, trained by autograd, is exactly the plain autoencoder).
"""

from operator import is_

import torch
from torch import nn
from torch.nn.modules import module as _module_globals

from ._losses import ReconstructionLoss, l2_penalty, log_loss_with_logits
from ._modules import Autoencoder, TiedLinear
from ._objective import ReconstructionObjective

_aten = torch.ops.aten

# The C++ guard behind torch.inference_mode(), without its Python wrapper.
_inference_mode = getattr(torch._C, "_InferenceMode", None) or (
    lambda enabled: torch.inference_mode(enabled)
)


def _grad_of(p):
    return p.grad


def _relu_backward(grad, out):
    return _aten.threshold_backward.default(grad, out, 0)


# Activation module type -> (in-place forward, gradient from the output,
# out-of-place forward).
ACTIVATIONS = {
    nn.ReLU: (torch.relu_, _relu_backward, torch.relu),
    nn.Sigmoid: (torch.sigmoid_, _aten.sigmoid_backward.default, torch.sigmoid),
    nn.Tanh: (torch.tanh_, _aten.tanh_backward.default, torch.tanh),
}

# Objective hooks that must be ReconstructionObjective's own.
_OBJECTIVE_HOOKS = ("_corrupt", "_loss", "_reconstruction_loss", "_penalty")

_LINEAR, _TIED, _ACT = 0, 1, 2


def _hooked(module):
    """Whether any forward or backward hook could see this module's calls."""
    if _module_globals._global_forward_hooks or _module_globals._global_forward_pre_hooks:
        return True
    if _module_globals._global_backward_hooks or _module_globals._global_backward_pre_hooks:
        return True
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
        or m._backward_pre_hooks
        for m in module.modules()
    )


def _plain_objective(objective):
    kind = type(objective)
    if not all(
        getattr(kind, name, None) is getattr(ReconstructionObjective, name)
        for name in _OBJECTIVE_HOOKS
    ):
        return False
    return not getattr(objective, "sparsity_weight", 0)


def eligible(net):
    """Whether ``net``'s training step may be :class:`FastStep`.

    The plain :class:`~skae._modules.Autoencoder` (not a subclass), without
    hooks, every parameter trainable; an objective whose corruption, loss and
    penalty are :class:`~skae._objective.ReconstructionObjective`'s with no
    sparsity term; ``'squared_error'`` or ``'log_loss'``; one process
    (no ``distributed``); no callback listening to per-batch events (they
    may read the autograd graph or the output); ``verbose=0`` (the log
    splits the loss into parts).
    """
    module, criterion = net.module_, net.criterion_
    if type(module) is not Autoencoder or type(criterion) is not ReconstructionLoss:
        return False
    if criterion.loss not in ("squared_error", "log_loss") or net.verbose:
        return False
    out = type(criterion.output_activation)
    if criterion.loss == "squared_error" and out is not nn.Identity and out not in ACTIVATIONS:
        return False
    if net._data_parallel is not None or net._per_batch:
        return False
    if not _plain_objective(net.objective) or _hooked(module):
        return False
    return all(p.requires_grad and p.layout == torch.strided for p in module.parameters())


def _layers(module):
    """``([(kind, weight, bias, activation)], code)``: the network as the step
    runs it, and the index of the step whose output is the code."""
    steps, code = [], None
    for layer in [*module.encoder, module.code, module.code_activation, *module.decoder]:
        if layer is module.code_activation:
            code = len(steps) - 1 if type(layer) is nn.Identity else len(steps)
        kind = type(layer)
        if kind is nn.Linear:
            steps.append((_LINEAR, layer.weight, layer.bias, None))
        elif kind is TiedLinear:
            steps.append((_TIED, layer.source.weight, layer.bias, None))
        elif kind in ACTIVATIONS:
            steps.append((_ACT, None, None, ACTIVATIONS[kind]))
        elif kind is not nn.Identity:
            return None, None
    return steps, code


def plan(net):
    """A :class:`FastStep` for ``net``, or None where autograd must run."""
    if not eligible(net):
        return None
    steps, code = _layers(net.module_)
    if steps is None:
        return None
    return FastStep(net, steps, code)


class FastStep:
    """Loss and gradients of one batch, by hand (see the module docstring).

    Parameters
    ----------
    net : AutoencoderNet
        The net being trained (its module, criterion and ``alpha``).
    steps : list of tuple
        From :func:`_layers`: ``(kind, weight, bias, activation)`` per layer.
    code : int
        Index in ``steps`` of the step whose output is the code.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer
    >>> from skae._fast_step import plan
    >>> est = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    >>> net = est.fit(np.random.RandomState(0).rand(20, 4))._net
    >>> step = plan(net)
    >>> x = torch.zeros(5, 4)
    >>> loss, (decoded, code) = step(x)
    >>> decoded.shape, code.shape
    (torch.Size([5, 4]), torch.Size([5, 2]))
    """

    def __init__(self, net, steps, code):
        params, slots = [], {}
        self.steps = []
        for kind, weight, bias, act in steps:
            if kind == _ACT:
                self.steps.append((kind, None, None, act, None, None, None))
                continue
            for p in (weight, bias):
                if id(p) not in slots:
                    slots[id(p)] = len(params)
                    params.append(p)
            w_slot, b_slot = slots[id(weight)], slots[id(bias)]
            # The matrix the forward multiplies by (a linear layer's weight
            # transposed, a tied layer's own) and the backward's (its
            # transpose): views made once, of tensors updated in place.
            fwd = weight.detach().t() if kind == _LINEAR else weight.detach()
            self.steps.append((kind, fwd, bias.detach(), None, w_slot, b_slot, fwd.t()))
        self.params = params
        # Backward order: the first product into a weight's .grad is written,
        # later ones (the other side of a tied pair) are added.
        seen, self.first_write = set(), {}
        for i in reversed(range(len(self.steps))):
            kind, _, _, _, w_slot, _, _ = self.steps[i]
            if kind != _ACT:
                self.first_write[i] = w_slot not in seen
                seen.add(w_slot)
        self.first_param_step = min(self.first_write)
        criterion = net.criterion_
        self.log_loss = criterion.loss == "log_loss"
        self.output = ACTIVATIONS.get(type(criterion.output_activation))
        self.code_step = code
        self.alpha = float(net.alpha)
        self.weights = [w.detach() for w in net.module_.weights()]
        self._last_grads = None  # the .grad tensors of the last step

    def _grads(self):
        """Each parameter's ``.grad``, allocated where missing (checked
        only when a ``.grad`` is not the tensor of the last step)."""
        grads = self._last_grads
        if grads is not None and all(map(is_, map(_grad_of, self.params), grads)):
            return grads
        grads = []
        for p in self.params:
            g = p.grad
            if g is None or g.shape != p.shape or g.dtype != p.dtype:
                p.grad = g = torch.empty_like(p, memory_format=torch.contiguous_format)
            grads.append(g)
        self._last_grads = grads
        return grads

    def __call__(self, x):
        """``(loss, (decoded, code))`` for the batch ``x``; gradients in ``.grad``.

        ``loss`` is what the autograd path's objective returns (mean
        reconstruction loss plus MLP's ``alpha`` penalty); ``decoded`` is
        the decoder's pre-activation, as the module's ``forward`` gives it.
        """
        grads = self._grads()  # outside inference mode: they outlive the step
        with _inference_mode(True):  # the same kernels, no autograd bookkeeping
            # saved[i]: the input of linear step i, the output of activation step i.
            saved, a, code = [], x, None
            for i, (kind, matrix, bias, act, _, _, _) in enumerate(self.steps):
                if kind == _ACT:
                    a = act[0](a)  # in place: its input is a fresh addmm output
                    saved.append(a)
                else:
                    saved.append(a)
                    a = torch.addmm(bias, a, matrix)
                if i == self.code_step:
                    code = a
            value, grad = self._loss_grad(a, x)
            self._backward(grad, saved, grads)
        return value, (a, code)

    def _loss_grad(self, z, x):
        """The batch loss and its gradient with respect to ``z``.

        The loss's value is computed with the autograd path's own ops, in
        its order, and the gradient as autograd's backward computes it
        (``(1/n)`` times ``2 r`` then the output activation's derivative;
        ``(sigmoid(z) - x) / n``): both are bit for bit the same.
        """
        n = x.shape[0]
        if self.log_loss:
            loss = log_loss_with_logits(z, x).mean()
            grad = torch.sigmoid(z).sub_(x).mul_(1.0 / n)
        else:
            out = z if self.output is None else self.output[2](z)
            r = out - x
            loss = r.pow(2).sum(dim=1).mean()
            grad = r.mul_(2.0 / n)
            if self.output is not None:
                grad = self.output[1](grad, out)
        if self.alpha:  # the value only: its gradient is the optimiser's decay
            loss = loss + self.alpha * l2_penalty(self.weights) / n
        return loss, grad

    def _backward(self, grad, saved, grads):
        """Every parameter's gradient into its ``.grad``, as autograd's
        backward computes it (the same products in the same orientation;
        a tied weight's two products added, not accumulated in the mm)."""
        for i in range(len(self.steps) - 1, self.first_param_step - 1, -1):
            kind, _, _, act, w_slot, b_slot, back = self.steps[i]
            if kind == _ACT:
                grad = act[1](grad, saved[i])
                continue
            # saved[i] is this layer's input; a tied layer's weight is used
            # transposed, so its gradient is the transposed product.
            left, right = (grad.t(), saved[i]) if kind == _LINEAR else (saved[i].t(), grad)
            if self.first_write[i]:
                torch.mm(left, right, out=grads[w_slot])
            else:
                grads[w_slot].add_(torch.mm(left, right))
            torch.sum(grad, 0, out=grads[b_slot])
            if i > self.first_param_step:
                grad = torch.mm(grad, back)
