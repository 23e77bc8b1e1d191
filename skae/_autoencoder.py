"""AutoencoderTransformer: undercomplete, sparse and tied-weight MLP autoencoders."""

from ._base import _BaseAutoencoder, _store_params
from ._docstrings import fill_doc


@fill_doc
class AutoencoderTransformer(_BaseAutoencoder):
    """Multilayer-perceptron autoencoder as a scikit-learn transformer.

    An encoder ``h = f(x)`` maps each sample to an ``n_components``-wide
    code and a decoder ``x_hat = g(h)`` maps it back; both are trained to
    minimise the reconstruction loss ``L(x, g(f(x)))`` averaged over the
    data, plus optional penalties. ``transform`` returns the code and
    ``inverse_transform`` the decoder's reconstruction, so the estimator is
    a drop-in, nonlinear replacement for :class:`~sklearn.decomposition.PCA`.

    With ``n_components`` below ``n_features`` the code is *undercomplete*
    and must capture the main factors of variation. With linear activations
    and squared error the optimal code spans the same subspace as PCA's
    first ``n_components`` components (the linear autoencoder theorem);
    nonlinear activations and hidden layers give a nonlinear generalisation.
    ``sparsity_weight`` adds an L1 penalty on the code (a sparse
    autoencoder) and ``tied_weights`` makes the decoder use the encoder's
    transposed weights.

    Training runs on PyTorch (CPU or GPU) through a skorch net, in float32;
    inference on float64 input uses a float64 copy of the weights, so
    results do not depend on how rows are batched.

    Parameters
    ----------
    {base_parameters}

    Attributes
    ----------
    {base_attributes}

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Supervised linear
        reduction for nearest neighbours.
    DenoisingAE : Autoencoder trained on corrupted inputs.
    VariationalAE : Probabilistic autoencoder.

    References
    ----------
    .. [1] P. Baldi and K. Hornik, "Neural networks and principal component
       analysis: learning from examples without local minima", Neural
       Networks 2(1), 1989.
    .. [2] G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality
       of data with neural networks", Science 313(5786), 2006.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, hidden_layer_sizes=(64,),
    ...                             max_iter=30, random_state=0, device="cpu")
    >>> codes = ae.fit_transform(X)
    >>> codes.shape
    (1797, 8)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)

    The score is minus the mean squared reconstruction error per sample,
    comparable with PCA's error at the same width:

    >>> pca = PCA(n_components=8).fit(X)
    >>> pca_error = ((X - pca.inverse_transform(pca.transform(X))) ** 2).sum(1).mean()
    >>> bool(-ae.score(X) < pca_error)
    True
    """

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
    ):
        _store_params(self, locals())
