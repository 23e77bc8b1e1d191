"""The torch side of SemanticHashing: the binarising module and the training terms.

:class:`HashingAutoencoder` (fully connected) and
:class:`HashingModularAutoencoder` (the conv stack or the user's modules) are
the networks, a logistic code pushed to binary while training by
:func:`binary_code`; :func:`balance_penalty` and :func:`neighborhood_loss` are the
terms :class:`skae.SemanticHashing` adds to the reconstruction loss. Both
terms are computed from one batch alone (no row indices, no state), so they
live in the estimator's ``_loss`` hook and the training loop knows nothing of
them.
"""

import torch

from . import _modules
from ._custom_modules import ModularAutoencoder
from ._modules import Autoencoder


class HashingAutoencoder(Autoencoder):
    """Autoencoder whose logistic code is pushed to binary while training.

    ``encode`` returns the code probabilities ``sigmoid(a)`` of the code
    layer's pre-activation ``a`` (the estimator thresholds them at 0.5).
    ``forward`` decodes:

    * in training mode with ``binarization='noise'``,
      ``sigmoid(a + noise_std * eps)``, ``eps ~ N(0, 1)`` from torch's global
      generator: to get through the noise the encoder has to drive ``|a|``
      far from 0, where the sigmoid is saturated (Salakhutdinov & Hinton);
    * in training mode with ``binarization='straight_through'``, the bits
      ``1[a > 0]`` with the gradient of ``sigmoid(a)`` (the straight-through
      estimator);
    * in eval mode the bits ``1[a > 0]``, so scores and validation measure
      the reconstruction from the binary code that ``transform`` returns.

    It returns ``(decoded, code, a)``: the pre-activation comes third, for
    the estimator's bit-balance and neighbourhood terms.

    Parameters are those of :class:`~skae._modules.Autoencoder` (the code
    activation is always logistic), plus ``binarization`` and ``noise_std``.
    """

    def __init__(
        self, n_features, n_components, binarization="noise", noise_std=4.0, **kwargs
    ):
        kwargs["code_activation"] = "logistic"
        super().__init__(n_features, n_components, **kwargs)
        self.binarization = binarization
        self.noise_std = float(noise_std)

    def forward(self, x):
        logits = self.code(self.encoder(x))
        code = binary_code(logits, self.training, self.binarization, self.noise_std)
        return self.decoder(code), code, logits


class HashingModularAutoencoder(ModularAutoencoder):
    """:class:`~skae._custom_modules.ModularAutoencoder` with a binary code.

    The encoder (the built-in conv stack or the user's module) gives the
    code layer's pre-activation ``a``; ``encode`` returns ``sigmoid(a)``
    (the ``code_activation`` argument is ignored: the code is always
    logistic) and ``forward`` binarises as :class:`HashingAutoencoder` does.
    """

    def __init__(
        self, encoder, decoder, n_features, n_components, code_activation="logistic",
        output_activation="identity", activation_width=None, *, binarization="noise",
        noise_std=4.0,
    ):
        super().__init__(
            encoder, decoder, n_features, n_components, "logistic", output_activation,
            activation_width,
        )
        self.binarization = binarization
        self.noise_std = float(noise_std)

    def forward(self, x):
        logits = self.encoder(x)
        code = binary_code(logits, self.training, self.binarization, self.noise_std)
        return self.decoder(code), code, logits


def binary_code(logits, training, binarization, noise_std):
    """The code the decoder sees: see :class:`HashingAutoencoder`."""
    if not training:
        return (logits > 0).to(logits.dtype)
    if binarization == "noise":
        return torch.sigmoid(logits + noise_std * _modules.standard_normal(logits))
    prob = torch.sigmoid(logits)
    return prob + ((logits > 0).to(prob.dtype) - prob).detach()


def balance_penalty(logits):
    """``sum_k (m_k / (s_k + 1))^2`` over the bits of a batch of pre-activations.

    ``m_k`` and ``s_k`` are the batch mean and standard deviation of bit
    ``k``'s pre-activation; 0 for a batch of one row.
    """
    if len(logits) < 2:
        return logits.sum() * 0.0
    mean = logits.mean(dim=0)
    std = logits.std(dim=0)
    return (mean / (std + 1)).pow(2).sum()


def input_neighbors(x, n_neighbors):
    """Row-stochastic target ``P`` of a batch: its k-NN graph in input space.

    ``P[i, j]`` is ``1 / deg_i`` when ``j`` is among the ``n_neighbors`` rows
    of the batch nearest to ``i`` in Euclidean distance, or ``i`` among
    ``j``'s (the graph is made symmetric), else 0; the diagonal is 0. With
    fewer rows than ``n_neighbors + 1`` every other row is a neighbour.
    Computed without autograd: it is a target.
    """
    n = len(x)
    with torch.no_grad():
        dist = torch.cdist(x, x)
        dist.fill_diagonal_(float("inf"))
        k = min(int(n_neighbors), n - 1)
        _, idx = dist.topk(k, dim=1, largest=False)
        graph = torch.zeros_like(dist)
        graph.scatter_(1, idx, 1.0)
        graph = torch.maximum(graph, graph.T)
        return graph / graph.sum(dim=1, keepdim=True)


def neighborhood_loss(x, logits, n_neighbors, temperature):
    """Stochastic-neighbour (SNE) loss of a batch's soft codes against its k-NN graph.

    Each row ``i`` picks a neighbour ``j != i`` of the batch with probability
    ``Q[i, j]`` proportional to ``exp(-h_ij / (n_bits * temperature))`` (as
    NCA picks neighbours), where ``h_ij = sum_k (1 - b_ik b_jk) / 2`` with
    ``b = tanh(a / 2) = 2 sigmoid(a) - 1``: the expected Hamming distance
    of two codes whose bits are drawn with the probabilities
    ``sigmoid(a)``, which is the Hamming distance when the code is binary
    and is smooth while it is not. The loss is the mean over
    rows of ``KL(P_i || Q_i)``, with ``P`` the input-space k-NN graph of the
    batch (:func:`input_neighbors`): it pulls each row's code towards its
    input-space neighbours' codes and, through the normalisation of ``Q``,
    away from the other rows' codes.

    Parameters
    ----------
    x : tensor of shape (n, n_features)
        The batch, as the network sees it (normalised).
    logits : tensor of shape (n, n_bits)
        Code pre-activations ``a``.
    n_neighbors : int
        Neighbours of each row in the target graph.
    temperature : float
        Width of ``Q`` as a fraction of the code's bits (on the scale of
        scikit-learn's ``metric='hamming'``, the fraction of differing bits).

    Returns
    -------
    loss : scalar tensor
        Non-negative; 0 (with a zero gradient) for a batch of fewer than 2
        rows.
    """
    n = len(x)
    if n < 2:
        return logits.sum() * 0.0
    target = input_neighbors(x, n_neighbors).to(logits.dtype)
    b = torch.tanh(logits / 2)
    # Bits k of rows i and j differ with probability (1 - b_ik b_jk) / 2.
    hamming = (b.shape[1] - b @ b.T) / 2
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    scores = (-hamming / (b.shape[1] * temperature)).masked_fill(eye, float("-inf"))
    log_q = torch.log_softmax(scores, dim=1).masked_fill(eye, 0.0)
    with torch.no_grad():
        entropy = -torch.special.xlogy(target, target).sum(dim=1)
    cross = -(target * log_q).sum(dim=1)
    return (cross - entropy).mean()
