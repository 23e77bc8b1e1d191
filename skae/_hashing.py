"""SemanticHashing: binary codes from an autoencoder, and retrieval by address."""

import functools

import numpy as np
import torch

from . import _hamming, _modules
from ._base import _BaseAutoencoder, _store_params
from ._custom_modules import ModularAutoencoder
from ._custom_modules import build_module as build_custom_module
from ._docstrings import fill_doc
from ._modules import Autoencoder
from ._rng import build_module
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    check_is_fitted,
)


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
    the estimator's bit-balance penalty.

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


def _check_count(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {name}={value!r}.")
    return int(value)


@fill_doc
class SemanticHashing(_BaseAutoencoder):
    """Semantic hashing: an autoencoder with a binary code, and retrieval by address.

    A deep autoencoder whose code layer is logistic and is driven to binary
    values while it trains, so that each sample gets an ``n_components``-bit
    address and similar samples get nearby addresses (Salakhutdinov &
    Hinton, "Semantic hashing"; Torralba, Fergus & Weiss, "Small codes").
    ``transform`` returns the bits (0 or 1, ``uint8``), ``inverse_transform``
    decodes bits to reconstructions, and the estimator keeps the packed
    bits of the rows it was fitted on (``n_components / 8`` bytes a row, not
    the data) to answer :meth:`kneighbors` and :meth:`radius_neighbors` as
    :class:`~sklearn.neighbors.NearestNeighbors` does, in Hamming distance.

    :meth:`kneighbors` compares packed bits (XOR and popcount on 64-bit
    words) with every fitted row. :meth:`radius_neighbors` does no search
    at all: it looks up the addresses of the Hamming ball around each query
    in a hash table of the fitted codes, so its cost per query depends on
    the radius and the number of results, not on the number of fitted rows.

    The network is the fully connected one of ``hidden_layer_sizes``, or
    ``encoder='conv'`` (the convolutional stack, for images) or the user's
    ``encoder``/``decoder`` modules: the encoder's ``n_components`` outputs
    are then the code layer's pre-activation, which the estimator passes
    through the noise (or the straight-through threshold) and the sigmoid.

    Parameters
    ----------
    {base_parameters}

    binarization : {'noise', 'straight_through'}, default='noise'
        How training pushes the code to binary. 'noise' adds Gaussian noise
        of standard deviation ``noise_std`` to the code layer's
        pre-activation before its sigmoid (semantic hashing's recipe); the
        network learns to saturate the sigmoid, and at the end the
        thresholded code loses little. 'straight_through' decodes the
        thresholded bits and back-propagates through the sigmoid as if no
        threshold were there. Measured on MNIST at 32 bits (8,000
        database images, 2,000 queries, 784-512-256-32, 60 epochs; see
        ``benchmarks/README.md``), the noise retrieved better: precision
        of the 100 nearest 0.736 and mAP 0.443 with ``noise_std=4``,
        against 0.681 and 0.374 straight-through.

    noise_std : float, default=4.0
        Standard deviation of the training noise of ``binarization='noise'``
        (ignored otherwise). On MNIST (60 epochs) 4 and 8 retrieved about
        equally well (mAP 0.443 and 0.464) and 2 worse (0.419); on digits
        with a small network and 30 epochs, 8 was no better than PCA's
        signs, 4 clearly better.

    balance_weight : float, default=1.0
        Weight of the bit-balance penalty
        ``sum_k (m_k / (s_k + 1))^2``, where ``m_k`` and ``s_k`` are the
        batch mean and standard deviation of bit ``k``'s pre-activation:
        it keeps each bit's threshold inside the data, so that every bit
        splits the data instead of saturating to a constant (which
        happens without it on uncentred input, e.g. ``loss='log_loss'``).
        0 turns it off.

    Attributes
    ----------
    {base_attributes}

    packed_codes_ : ndarray of uint8 of shape (n_samples_fit, ceil(n_components / 8))
        The bits of the fitted rows, packed with :func:`numpy.packbits`
        (after :meth:`partial_fit`, the rows of its latest call).

    n_samples_fit_ : int
        Number of rows in the index.

    See Also
    --------
    AutoencoderTransformer : Autoencoder with a real-valued code.
    sklearn.neighbors.NearestNeighbors : Exact neighbours in any metric.

    Notes
    -----
    ``code_activation`` must be 'logistic': the code of a hash is a
    probability per bit. A bit that is constant on the data carries no
    information; ``balance_weight`` keeps every bit in use (on MNIST each
    bit's mean over the database stayed between 0.45 and 0.60).

    Distances are numbers of differing bits (integers), i.e.
    ``n_components`` times scikit-learn's ``metric='hamming'``. Ties are
    broken by the lower row index. With ``X=None`` the queries are the
    fitted rows and, as in :class:`~sklearn.neighbors.NearestNeighbors`, no
    row is its own neighbour: :meth:`kneighbors` finds ``n_neighbors + 1``
    rows and drops the query itself (or, when more than ``n_neighbors``
    lower-index duplicates keep it out, the first one), and
    :meth:`radius_neighbors` drops the query's own index.

    References
    ----------
    .. [1] R. Salakhutdinov and G. Hinton, "Semantic hashing", International
       Journal of Approximate Reasoning 50(7), 2009.
    .. [2] A. Torralba, R. Fergus and Y. Weiss, "Small codes and large image
       databases for recognition", CVPR, 2008.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SemanticHashing
    >>> X, y = load_digits(return_X_y=True)
    >>> sh = SemanticHashing(n_components=16, hidden_layer_sizes=(64,),
    ...                      max_iter=20, random_state=0, device="cpu")
    >>> codes = sh.fit_transform(X)
    >>> codes.shape, codes.dtype
    ((1797, 16), dtype('uint8'))
    >>> dist, ind = sh.kneighbors(X[:2], n_neighbors=3)
    >>> dist.shape, ind.shape
    ((2, 3), (2, 3))
    >>> dist, ind = sh.radius_neighbors(X[:2], radius=1)
    >>> bool((dist[0] <= 1).all())
    True
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "code_activation": [StrOptions({"logistic"})],
        "binarization": [StrOptions({"noise", "straight_through"})],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "balance_weight": [Interval(Real, 0, None, closed="left")],
    }
    # The hash table is rebuilt on demand from packed_codes_: never stored.
    _transient_attributes = _BaseAutoencoder._transient_attributes | {"_hamming_table"}

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(100,),
        activation="relu",
        code_activation="logistic",
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
        binarization="noise",
        noise_std=4.0,
        balance_weight=1.0,
    ):
        _store_params(self, locals())

    # ------------------------------------------------------------------
    # hooks
    # ------------------------------------------------------------------
    def _build_module(self, n_features):
        if self.encoder is not None or self.decoder is not None:
            factory = functools.partial(
                HashingModularAutoencoder,
                binarization=self.binarization,
                noise_std=self.noise_std,
            )
            return build_custom_module(self, n_features, False, module_class=factory)
        return build_module(
            HashingAutoencoder,
            n_features,
            self.n_components,
            binarization=self.binarization,
            noise_std=self.noise_std,
            hidden_layer_sizes=self._hidden_sizes(),
            activation=self.activation,
            output_activation=self._output_activation,
            tied_weights=self.tied_weights,
        )

    def _loss(self, net, x, x_in, y, output):
        loss = super()._loss(net, x, x_in, y, output)
        if self.balance_weight and len(x) > 1:
            logits = output[2]
            mean = logits.mean(dim=0)
            std = logits.std(dim=0)
            loss = loss + self.balance_weight * (mean / (std + 1)).pow(2).sum()
        return loss

    # ------------------------------------------------------------------
    # fitting: the network, then the index of the fitted rows
    # ------------------------------------------------------------------
    def _record_fit(self, net, n_before, X, stats, incremental):
        # Inside the base's guarded fit: a failed call leaves the old index.
        # The index holds the rows of the latest call (for partial_fit, the
        # latest chunk: earlier chunks' codes change as training goes on).
        super()._record_fit(net, n_before, X, stats, incremental)
        self.__dict__.pop("_hamming_table", None)
        self.packed_codes_ = _hamming.pack_codes(self.transform(X))
        self.n_samples_fit_ = int(self.packed_codes_.shape[0])

    def _table(self):
        """The hash table of the fitted codes, built on first use."""
        table = self.__dict__.get("_hamming_table")
        if table is None:
            table = _hamming.HammingTable(self.packed_codes_, self.n_components_)
            self._hamming_table = table
        return table

    # ------------------------------------------------------------------
    # codes
    # ------------------------------------------------------------------
    def transform(self, X):
        """Binary codes of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of uint8 of shape (n_samples, n_components)
            Bit ``k`` is 1 where the code layer's probability exceeds 0.5.
        """
        X = self._check_inference_input(X)
        return self._run(
            X, lambda e, x: (e.encode(x) > 0.5).to(torch.uint8), out_dtype=np.uint8
        )

    def inverse_transform(self, X):
        """Decode binary codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform` (0/1 values; probabilities in
            between decode too).

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstructions, float64 for integer codes.
        """
        return super().inverse_transform(X)

    def _query_codes(self, X):
        check_is_fitted(self)
        if X is None:
            return self.packed_codes_, True
        return _hamming.pack_codes(self.transform(X)), False

    # ------------------------------------------------------------------
    # retrieval
    # ------------------------------------------------------------------
    def kneighbors(self, X=None, n_neighbors=5, return_distance=True):
        """The fitted rows nearest to each query, in Hamming distance.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, encoded with :meth:`transform`. None: the fitted rows,
            each excluded from its own neighbours (as in
            :meth:`sklearn.neighbors.NearestNeighbors.kneighbors`).
        n_neighbors : int, default=5
            Number of neighbours; at most the number of fitted rows (less
            than it with ``X=None``).
        return_distance : bool, default=True
            Return the distances too.

        Returns
        -------
        neigh_dist : ndarray of int64 of shape (n_queries, n_neighbors)
            Hamming distances (numbers of differing bits), ascending; only
            with ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices of the fitted rows; ties in increasing index order.
        """
        query, is_train = self._query_codes(X)
        n_neighbors = _check_count(n_neighbors, "n_neighbors")
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1, got n_neighbors={n_neighbors}.")
        n_fit = self.n_samples_fit_
        if n_neighbors > n_fit - is_train:
            rule = "n_neighbors < n_samples_fit" if is_train else "n_neighbors <= n_samples_fit"
            raise ValueError(
                f"Expected {rule}, but n_neighbors = {n_neighbors}, "
                f"n_samples_fit = {n_fit}, n_samples = {len(query)}."
            )
        dist, ind = _hamming.kneighbors_packed(
            query, self.packed_codes_, n_neighbors, exclude_self=is_train
        )
        return (dist, ind) if return_distance else ind

    def radius_neighbors(self, X=None, radius=2, return_distance=True):
        """Every fitted row within a Hamming distance of each query.

        The rows are found by looking up each address of the Hamming ball
        around the query (the sum of ``C(n_components, d)`` over
        ``d <= radius`` of them)
        in a hash table of the fitted codes: exact, and the cost per query
        does not grow with the number of fitted rows. When the ball has more
        addresses than there are distinct fitted codes, comparing with those
        codes is cheaper and is done instead (same result).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries, encoded with :meth:`transform`. None: the fitted rows,
            each excluded from its own neighbours (as in
            :meth:`sklearn.neighbors.NearestNeighbors.radius_neighbors`).
        radius : int, default=2
            Largest Hamming distance returned (inclusive), from 0 to
            ``n_components``.
        return_distance : bool, default=True
            Return the distances too.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,) of ndarrays of int64
            Each query's distances, ascending; only with
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries,) of ndarrays of int64
            Each query's row indices, by distance then index.
        """
        query, is_train = self._query_codes(X)
        if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, Real):
            raise ValueError(f"radius must be a number, got radius={radius!r}.")
        if not 0 <= radius <= self.n_components_:
            raise ValueError(
                f"radius must be between 0 and n_components={self.n_components_}, "
                f"got radius={radius!r}."
            )
        q_idx, dist, ind = self._table().radius_neighbors(
            query, int(np.floor(radius)), exclude_self=is_train
        )
        neigh_dist, neigh_ind = _hamming.split_by_query(len(query), q_idx, dist, ind)
        return (neigh_dist, neigh_ind) if return_distance else neigh_ind

    # ------------------------------------------------------------------
    # persistence and plumbing
    # ------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are uint8
        return tags
