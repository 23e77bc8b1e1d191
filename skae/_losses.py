"""Loss terms as pure tensor functions.

Convention used throughout skae: a reconstruction term or a penalty is a
*per-sample* quantity (summed over features or code units), and the training
objective averages it over the batch. A penalty weight therefore means the
same thing whatever the batch or data size. The one exception is ``alpha``,
which follows :class:`~sklearn.neural_network.MLPRegressor` exactly
(``0.5 * alpha * ||W||^2`` divided by the batch size).
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._modules import ACTIVATIONS
from ._poisson import poisson_nll


def squared_error(reconstruction, target):
    """Per-sample sum of squared errors, shape ``(n_samples,)``."""
    return (reconstruction - target).pow(2).sum(dim=1)


def log_loss_with_logits(logits, target):
    """Per-sample binary cross-entropy summed over features.

    Computed from the decoder's pre-activations (logits) for numerical
    stability; equals ``-sum(x log p + (1 - x) log(1 - p))`` with
    ``p = sigmoid(logits)``.
    """
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(
        dim=1
    )


def l2_penalty(weights):
    """``0.5 * sum ||W||_F^2`` over the given weight matrices (no biases).

    Four ops whatever the number of matrices (one foreach norm, then the
    squared length of the vector of norms): the value is computed at every
    training step, where per-op cost dominates on small networks.
    """
    weights = list(weights)
    if not weights:
        return torch.zeros(())
    norms = torch.stack(torch._foreach_norm(weights))
    return 0.5 * torch.dot(norms, norms)


def l1_activity(code):
    """Per-sample L1 norm of the code, shape ``(n_samples,)``."""
    return code.abs().sum(dim=1)


def gaussian_kl(mean, log_var):
    """Per-sample ``KL(N(mean, diag(exp(log_var))) || N(0, I))`` in nats.

    Closed form ``0.5 * sum(mean^2 + var - log_var - 1)`` over code units.
    """
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1.0).sum(dim=1)


class ReconstructionLoss(nn.Module):
    """Per-sample reconstruction loss from the decoder's pre-activations.

    This is the skorch ``criterion`` of every skae net.

    Parameters
    ----------
    loss : {'squared_error', 'log_loss', 'poisson'}
        ``'squared_error'`` applies ``output_activation`` and sums squared
        errors; ``'log_loss'`` is Bernoulli cross-entropy on logits;
        ``'poisson'`` the Poisson negative log-likelihood of log-rates
        (:func:`skae._poisson.poisson_nll`).
    output_activation : str
        Name in :data:`skae._modules.ACTIVATIONS`; ignored for ``'log_loss'``
        and ``'poisson'`` (whose output activations are the logistic sigmoid
        and exp).
    """

    def __init__(self, loss="squared_error", output_activation="identity"):
        super().__init__()
        self.loss = loss
        self.output_activation = ACTIVATIONS[output_activation]()

    def forward(self, decoded, target):
        if self.loss == "log_loss":
            return log_loss_with_logits(decoded, target)
        if self.loss == "poisson":
            return poisson_nll(decoded, target)
        return squared_error(self.output_activation(decoded), target)


def nca_loss(code, y):
    """Per-sample stochastic nearest-neighbour error within a batch, ``1 - p_i``.

    The Neighbourhood Components Analysis objective (Goldberger et al., 2005)
    on codes ``z``: sample ``i`` picks neighbour ``j != i`` of the batch with
    probability ``p_ij = softmax_j(-||z_i - z_j||^2)``, and
    ``p_i = sum_{j: y_j = y_i} p_ij`` is the probability that it is classified
    correctly. Returns ``1 - p_i``, shape ``(n_samples,)``; its batch mean is
    the expected leave-one-out error of this stochastic 1-NN rule. A batch of
    one sample has no neighbour and gives 1 (with zero gradient).
    """
    n = len(code)
    if n < 2:
        return code.new_ones(n) + 0.0 * code.sum(dim=1)
    sq = code.pow(2).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * code @ code.t()).clamp_min(0.0)
    eye = torch.eye(n, dtype=torch.bool, device=code.device)
    p = torch.softmax(-dist.masked_fill(eye, float("inf")), dim=1)
    same = (y[:, None] == y[None, :]) & ~eye
    return 1.0 - (p * same).sum(dim=1)


# -- contractive penalty (ContractiveAE) ------------------------------------
# Derivative of each code activation written in terms of its output h, so the
# one-layer closed form needs only the code the forward pass already made.
_CODE_DERIVATIVES = {
    "identity": lambda h: torch.ones_like(h),
    "logistic": lambda h: h * (1.0 - h),
    "tanh": lambda h: 1.0 - h * h,
    "relu": lambda h: (h > 0).to(h.dtype),
}


def contractive_penalty_closed_form(code, weight, code_activation="logistic"):
    """Per-sample ``||J_h(x)||_F^2`` of a one-layer encoder, in closed form.

    For ``h = f(b + W x)`` with an elementwise ``f`` the Jacobian is
    ``diag(f'(a)) W``, so ``||J||_F^2 = sum_j f'(a_j)^2 ||W_j||^2`` (``W_j``
    the j-th row). For the logistic sigmoid ``f'(a_j) = h_j (1 - h_j)``
    (Rifai et al., 2011, eq. 4); tanh gives ``1 - h_j^2``, relu ``[h_j > 0]``
    and the identity 1.

    Parameters
    ----------
    code : Tensor of shape (n_samples, n_components)
        The code ``h`` (after the activation).
    weight : Tensor of shape (n_components, n_features)
        The encoder's weight ``W``.
    code_activation : {'logistic', 'tanh', 'relu', 'identity'}
        The activation ``f``.

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    deriv = _CODE_DERIVATIVES[code_activation](code)
    return deriv.pow(2) @ weight.pow(2).sum(dim=1)


def _unit_cotangents(h):
    """``(k, n, k)`` one-hot cotangents: slice j selects code unit j."""
    n, k = h.shape
    eye = torch.eye(k, dtype=h.dtype, device=h.device)
    return eye.unsqueeze(1).expand(k, n, k)


def _batched_vjp(h, wrt, create_graph):
    """Rows ``d h[:, j] / d wrt`` for every code unit j, shape ``(k, n, ...)``."""
    (grad,) = torch.autograd.grad(
        h,
        wrt,
        _unit_cotangents(h),
        is_grads_batched=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    if grad is None:  # the code does not depend on the input at all
        grad = torch.zeros((h.shape[1], *wrt.shape), dtype=wrt.dtype, device=wrt.device)
    return grad


def encoder_jacobian(encode, x, *, create_graph=False):
    """Per-sample Jacobians of ``encode`` at the rows of ``x``.

    Exact, by reverse mode: one vectorised vector-Jacobian product per code
    unit (``k`` of them, batched with ``is_grads_batched``). ``encode`` must
    treat rows independently (no batch statistics).

    Parameters
    ----------
    encode : callable
        Maps a ``(n_samples, n_features)`` tensor to ``(n_samples, k)``.
    x : Tensor of shape (n_samples, n_features)
        Where to evaluate the Jacobian.
    create_graph : bool, default=False
        Keep the graph so the result can be differentiated again (training).

    Returns
    -------
    Tensor of shape (n_samples, k, n_features)
        ``J[i, j, l] = d encode(x)[i, j] / d x[i, l]``.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        h = encode(x)
        return _batched_vjp(h, x, create_graph).transpose(0, 1)


def contractive_penalty(encode, x, first_layer=None, *, gram=None):
    """Per-sample ``||J_h(x)||_F^2`` of any encoder, exactly, differentiably.

    Reverse mode with ``k`` batched vector-Jacobian products (``k`` the code
    width), kept in the graph (``create_graph=True``) so the penalty can be
    trained on. Forward mode would need one product per *input* feature, so
    reverse mode is the cheap exact choice whenever ``k < n_features``.

    When ``first_layer`` is the :class:`torch.nn.Linear` that ``encode``
    applies directly to ``x`` (``a = W x + b``), the products stop at ``a``:
    with ``G = dh/da`` (per sample ``k x m``) the Jacobian is ``G W``, and
    ``||G W||_F^2`` is computed either directly or as
    ``sum_j g_j (W W^T) g_j^T``, whichever needs fewer multiplications
    (the Gram form wins for wide codes and a first layer narrower than the
    input). Both are exact. If ``encode`` turns out not to feed ``x``
    straight into ``first_layer`` the products go all the way to ``x``.

    Parameters
    ----------
    encode : callable
        Maps a ``(n_samples, n_features)`` tensor to the code
        ``(n_samples, k)``, row by row.
    x : Tensor of shape (n_samples, n_features)
        Input batch (the gradient is taken with respect to it; its own
        ``requires_grad`` does not matter).
    first_layer : torch.nn.Linear or None, default=None
        The encoder's input layer, to enable the shortcut above.
    gram : bool or None, default=None
        With ``first_layer``: force the Gram form (True) or the direct
        product (False); None picks the one with fewer multiplications
        (:func:`_gram_is_cheaper`).

    Returns
    -------
    Tensor of shape (n_samples,)
        ``||d encode(x_i) / d x_i||_F^2`` for every row.
    """
    x = x.detach()
    seen = []
    if first_layer is not None:

        def grab(layer, inputs, output):
            seen.append((inputs[0] is x, output))

        handle = first_layer.register_forward_hook(grab)
        try:
            h = encode(x)
        finally:
            handle.remove()
    if len(seen) != 1 or not seen[0][0] or not seen[0][1].requires_grad:
        jac = encoder_jacobian(encode, x, create_graph=True)
        return jac.pow(2).sum(dim=(1, 2))
    a = seen[0][1]
    G = _batched_vjp(h, a, create_graph=True)  # (k, n, m)
    weight = first_layer.weight  # (m, n_features)
    k, n, m = G.shape
    if gram is None:
        gram = _gram_is_cheaper(k, n, m, weight.shape[1])
    if gram:
        return ((G @ (weight @ weight.t())) * G).sum(dim=(0, 2))
    return (G @ weight).pow(2).sum(dim=(0, 2))


def _gram_is_cheaper(k, n_samples, width, n_features):
    """Whether ``sum((G M) * G)`` with ``M = W W^T`` beats ``||G W||^2``.

    Multiply counts: ``width^2 * n_features + k * n_samples * width^2``
    (build ``M``, apply it) against ``k * n_samples * width * n_features``.
    """
    gram = width * width * (n_features + k * n_samples)
    direct = k * n_samples * width * n_features
    return gram < direct
