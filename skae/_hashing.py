"""SemanticHashing: binary codes from an autoencoder, and retrieval by address."""

import functools

import numpy as np
import torch

from . import _hamming, _hamming_table
from ._base import _BaseAutoencoder, _store_params
from ._custom_modules import build_module as build_custom_module
from ._docstrings import fill_doc
from ._hashing_objective import (
    HashingAutoencoder,
    HashingModularAutoencoder,
    balance_penalty,
    neighborhood_loss,
)
from ._rng import build_module
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    check_is_fitted,
)


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

    :meth:`kneighbors` compares packed bits (XOR and popcount) with every
    fitted row, then ranks only the rows within each query's ``k``-th
    distance. :meth:`radius_neighbors` does no search
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

    neighbor_weight : float, default=0.0
        Weight of the neighbourhood term (see Notes): the codes of each
        batch are made to keep the batch's input-space neighbours, which
        retrieval needs and reconstruction alone does not give. The term is
        a few nats a row while the summed ``'log_loss'`` of an MNIST image
        is near 60, so useful weights are large: with 1000,
        ``batch_size=1000`` and 30 epochs, MNIST at 32 bits reached a
        precision of the 100 nearest of 0.82 and mAP 0.61, against 0.72 and
        0.44 without it and ITQ's 0.74 and 0.46 (``benchmarks/README.md``).
        0 (the default) trains the plain semantic-hashing autoencoder.

    batch_neighbors : int, default=10
        Number of nearest rows of the same batch (Euclidean distance between
        the rows as the network sees them, i.e. after ``normalize``) that
        make each row's neighbourhood in the neighbourhood term; the graph
        is made symmetric. Only used when ``neighbor_weight > 0``; with a
        larger ``batch_size`` each row has closer neighbours in its batch.

    neighbor_temperature : float, default=0.15
        Width of the stochastic-neighbour rule of the neighbourhood term, as
        a fraction of ``n_components``: a row picks another row of the batch
        with probability proportional to
        ``exp(-h / (n_components * neighbor_temperature))``, where ``h`` is
        the Hamming distance of their codes (so ``h / n_components`` is
        scikit-learn's ``metric='hamming'``). On MNIST a width fixed in bits
        that suited 32 bits was too narrow at 64 (mAP 0.50 against 0.59
        with twice the width); a wider rule trades precision of the nearest
        for mAP, and 0.15 met the benchmark's targets at 16, 32 and 64
        bits. Only used when ``neighbor_weight > 0``.

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
    The neighbourhood term (``neighbor_weight > 0``) is computed from each
    batch alone, without labels. Its target is the batch's k-NN graph in
    input space, ``P[i, j] = 1 / deg_i`` for the ``batch_neighbors`` nearest
    rows (symmetrised); its model is NCA's stochastic neighbour in code
    space, ``Q[i, j]`` proportional to ``exp(-h_ij / T)`` over the other
    rows ``j`` of the batch, with ``T = n_components * neighbor_temperature``,
    ``h_ij = sum_k (1 - b_ik b_jk) / 2`` and
    ``b = 2 sigmoid(a) - 1`` (the expected Hamming distance of codes drawn
    bit by bit with the code probabilities; the Hamming distance once the
    code is binary). The term is the mean over rows of ``KL(P_i || Q_i)``:
    each code is pulled towards its neighbours' codes and, through the
    normalisation of ``Q``, pushed away from the rest of the batch, so that
    the codes cannot collapse; with the balance penalty every bit splits
    the data. This is the graph-hashing idea (spectral and anchor graph
    hashing: codes that keep the neighbours of a manifold) computed per
    batch as parametric SNE does.

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
    .. [3] J. Goldberger, S. Roweis, G. Hinton and R. Salakhutdinov,
       "Neighbourhood components analysis", NIPS, 2004.
    .. [4] L. van der Maaten, "Learning a parametric embedding by preserving
       local structure", AISTATS, 2009.

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
        "neighbor_weight": [Interval(Real, 0, None, closed="left")],
        "batch_neighbors": [Interval(Integral, 1, None, closed="left")],
        "neighbor_temperature": [Interval(Real, 0, None, closed="neither")],
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
        neighbor_weight=0.0,
        batch_neighbors=10,
        neighbor_temperature=0.15,
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
            loss = loss + self.balance_weight * balance_penalty(output[2])
        if self.neighbor_weight and len(x) > 1:
            term = neighborhood_loss(
                x, output[2], self.batch_neighbors, self.neighbor_temperature
            )
            loss = loss + self.neighbor_weight * term
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
            table = _hamming_table.HammingTable(self.packed_codes_, self.n_components_)
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
        in a hash table of the fitted codes: exact, and the work per query
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
        neigh_dist, neigh_ind = _hamming_table.split_by_query(len(query), q_idx, dist, ind)
        return (neigh_dist, neigh_ind) if return_distance else neigh_ind

    # ------------------------------------------------------------------
    # persistence and plumbing
    # ------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are uint8
        return tags
