"""ContractiveAE: an autoencoder whose encoder Jacobian is penalised exactly."""


from ._base import _BaseAutoencoder, _store_params
from ._docstrings import fill_doc
from ._losses import (
    contractive_penalty,
    contractive_penalty_closed_form,
    encoder_jacobian,
)
from ._modules import Autoencoder
from ._validation import Interval, Real


@fill_doc
class ContractiveAE(_BaseAutoencoder):
    """Contractive autoencoder: reconstruction plus an encoder-Jacobian penalty.

    The encoder ``h = f(x)`` and decoder ``g`` are trained on

    .. math::

        \\frac{1}{n} \\sum_i \\Big( L(x_i, g(f(x_i)))
        + \\lambda \\, \\| J_f(x_i) \\|_F^2 \\Big),
        \\qquad J_f(x) = \\frac{\\partial f(x)}{\\partial x}
        \\in \\mathbb{R}^{k \\times d},

    with ``lambda = contraction_weight``, ``k = n_components`` and ``d``
    the number of features (plus the base penalties ``alpha`` and
    ``sparsity_weight``). ``||J||_F^2 = sum_{j,l} (dh_j/dx_l)^2`` is the
    squared Frobenius norm of the Jacobian of the code with respect to the
    input, per sample, averaged over the batch. The penalty makes the code
    insensitive to every input direction except those the reconstruction
    needs, i.e. the directions along which the training data vary: the
    encoder is locally *contractive* off the data manifold. Unlike a
    denoising autoencoder's sampled corruption, the penalty and its gradient
    are deterministic.

    The penalty is exact for any depth and activation. A one-layer encoder
    ``h = f(b + W x)`` (``hidden_layer_sizes=()``) uses the closed form
    ``sum_j f'(a_j)^2 ||W_j||^2``, which for the sigmoid
    (``code_activation='logistic'``) is Rifai et al.'s
    ``sum_j (h_j (1 - h_j))^2 ||W_j||^2``. Deeper encoders use reverse-mode
    autograd: ``k`` vector-Jacobian products, batched into one vectorised
    call and kept differentiable (reverse mode; forward mode would need one
    product per input feature). The products stop at the first layer's
    output ``a = W_1 x + b_1`` and ``||G W_1||_F^2`` is evaluated through
    ``W_1 W_1^T`` when that needs fewer multiplications. A training step
    then costs well under ``(k + 2)`` plain steps: about 2x for ``k=2`` and
    7x for ``k=30`` on a 784-256-128-k encoder at batch 128 on one CPU
    thread (``benchmarks/bench_contractive.py``). ``contraction_weight=0``
    skips the penalty and trains exactly the plain
    :class:`~skae.AutoencoderTransformer`.

    The Jacobian is taken with respect to the network's input, i.e. after
    the estimator's own ``normalize`` scaling, ``x_norm = (x - mean_) /
    scale_``. :meth:`jacobian` reports it in the units of ``X``
    (``J_user = J_norm / scale_``, column by column).

    With a linear code (``code_activation='identity'``, the default) and
    untied weights the network can lower the penalty by shrinking the code
    and growing the decoder; only ``alpha`` resists this. A bounded code
    (``code_activation='logistic'`` or ``'tanh'``) or ``tied_weights=True``
    (as in Rifai et al.) makes the contraction act on the geometry of the
    code rather than on its scale.

    Parameters
    ----------
    {base_parameters}

    contraction_weight : float, default=0.1
        ``lambda``, the weight of the mean squared Frobenius norm of the
        encoder Jacobian (taken with respect to the normalised input).
        0 trains a plain autoencoder.

    Attributes
    ----------
    {base_attributes}

    See Also
    --------
    AutoencoderTransformer : The same autoencoder without the penalty.
    DenoisingAE : Robustness learnt from sampled input corruption.
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Supervised linear
        reduction for nearest neighbours.

    References
    ----------
    .. [1] S. Rifai, P. Vincent, X. Muller, X. Glorot and Y. Bengio,
       "Contractive auto-encoders: explicit invariance during feature
       extraction", ICML 2011.
    .. [2] S. Rifai, G. Mesnil, P. Vincent, X. Muller, Y. Bengio, Y. Dauphin
       and X. Glorot, "Higher order contractive auto-encoder", ECML PKDD
       2011.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import ContractiveAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> cae = ContractiveAE(n_components=8, hidden_layer_sizes=(64,),
    ...                     code_activation="tanh", contraction_weight=1.0,
    ...                     max_iter=20, random_state=0, device="cpu")
    >>> cae.fit_transform(X).shape
    (1797, 8)

    The per-sample Jacobians of the code, in the units of ``X``, and their
    singular values (how strongly the code follows each input direction):

    >>> J = cae.jacobian(X[:200])
    >>> J.shape
    (200, 8, 64)
    >>> np.linalg.svd(J, compute_uv=False).shape
    (200, 8)

    The same network without the penalty is far more sensitive:

    >>> ae = ContractiveAE(n_components=8, hidden_layer_sizes=(64,),
    ...                    code_activation="tanh", contraction_weight=0.0,
    ...                    max_iter=20, random_state=0, device="cpu").fit(X)
    >>> def mean_frobenius(model):
    ...     return np.sqrt((model.jacobian(X[:200]) ** 2).sum(axis=(1, 2))).mean()
    >>> bool(mean_frobenius(cae) < 0.8 * mean_frobenius(ae))
    True
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "contraction_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        code_activation="identity",
        output_activation=None,
        loss="squared_error",
        normalize="auto",
        tied_weights=False,
        alpha=1e-4,
        sparsity_weight=0.0,
        solver="adam",
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="auto",
        callbacks=None,
        distributed=False,
        encoder=None,
        decoder=None,
        input_shape=None,
        conv_channels=(32, 64),
        kernel_size=3,
        contraction_weight=0.1,
    ):
        _store_params(self, locals())

    # ------------------------------------------------------------------
    # the extra loss term
    # ------------------------------------------------------------------
    def _loss(self, net, x, x_in, y, output):
        loss = super()._loss(net, x, x_in, y, output)
        if self.contraction_weight:
            penalty = self._contraction(net.module_, x_in, output[1])
            loss = loss + self.contraction_weight * penalty.mean()
        return loss

    def _contraction(self, module, x_in, code):
        """Per-sample ``||J(x_in)||_F^2`` of ``module.encode`` (differentiable).

        ``code`` is ``module.encode(x_in)`` from the forward pass; the
        one-layer closed form reuses it, the general path re-runs the
        encoder with the products it needs.
        """
        if type(module) is Autoencoder and not self._hidden_sizes():
            return contractive_penalty_closed_form(
                code, module.code.weight, self.code_activation
            )
        first = None
        if hasattr(module, "encoder_layers"):
            first = module.encoder_layers()[0]
        return contractive_penalty(module.encode, x_in, first_layer=first)

    # ------------------------------------------------------------------
    # looking at the learned manifold
    # ------------------------------------------------------------------
    def jacobian(self, X):
        """Per-sample Jacobian of the code with respect to the input.

        ``J[i, j, l] = d transform(X)[i, j] / d X[i, l]``, in the units of
        ``X``: the chain rule through the estimator's normalisation divides
        column ``l`` of the network's Jacobian by ``scale_[l]``. (The
        training penalty uses the network's Jacobian, i.e. ``J * scale_``.)

        The singular value decomposition ``J_i = U S V^T`` describes the
        code's local behaviour around ``X[i]``: the right singular vectors
        (rows of ``V^T``) with large singular values are the input
        directions the code responds to, i.e. the local tangent directions
        of the learnt data manifold, and directions with small singular
        values are contracted away. A contractive autoencoder typically has
        a few large singular values and the rest close to zero; a plain
        autoencoder spreads them more evenly.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points at which to evaluate the Jacobian.

        Returns
        -------
        J : ndarray of shape (n_samples, n_components, n_features)
            The Jacobians, in X's floating dtype.
        """
        X = self._check_inference_input(X)
        k = self.n_components_
        width = max(self._inference_entry(X.dtype).width, X.shape[1])

        def jacobians(entry, x):
            module = entry.module
            return encoder_jacobian(lambda v: module.encode(module.normalize(v)), x)

        # The k stacked products hold about k * rows * width numbers.
        return self._run(X, jacobians, row_elements=k * width, autograd=True)
