"""StackedAE: greedy layer-wise pretraining, then end-to-end fine-tuning."""

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from torch import nn
from torch.nn import functional as F

from . import _distributed
from ._base import _BaseAutoencoder, _store_params
from ._conv_pretraining import pretrain_conv
from ._corruption import NOISES, check_noise_level
from ._docstrings import fill_doc
from ._losses import ReconstructionLoss, nca_loss
from ._pretraining import pretrain
from ._rng import build_module
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    validate_data,
)

_SUPERVISED = ("classification", "nca")


@fill_doc
class StackedAE(_BaseAutoencoder):
    """Deep autoencoder trained by greedy layer-wise pretraining and fine-tuning.

    With layer widths ``d_0 = n_features, d_1, ..., d_L = n_components``
    (``hidden_layer_sizes`` followed by ``n_components``), training has two
    stages.

    **Greedy pretraining.** Layer ``k`` is a one-hidden-layer autoencoder
    ``h_k = s(W_k h_{k-1} + b_k)``, ``h_{k-1} ~= s'(W'_k h_k + b'_k)``
    fitted for ``pretrain_max_iter`` epochs to the codes ``h_{k-1}`` of the
    layers below it (``h_0 = x``, normalised), each optionally denoising
    (``noise``: the layer sees a corrupted ``h_{k-1}`` and must
    reconstruct the clean one) or sparse (``sparsity_weight``: an L1
    penalty on ``h_k``; during fine-tuning, on the code). Here ``s`` is
    ``activation`` for hidden layers and ``code_activation`` for the last;
    ``s'`` is the output activation (and ``loss``) for layer 1, and
    ``activation`` (with squared error) above it.
    Every stage is a one-layer autoencoder (denoising when ``noise`` is
    set) trained with the same optimiser settings through the one training
    loop, on the data already on the device.

    **Unrolling and fine-tuning.** The encoders are stacked into
    ``f = f_L o ... o f_1`` and the decoders, in reverse order, into
    ``g = g_1 o ... o g_L``; the deep network is then trained end to end
    for up to ``max_iter`` epochs, with the objective chosen by
    ``fine_tune``:

    * ``'reconstruction'``: ``mean_i L(x_i, g(f(x_i)))`` plus penalties, the
      deep autoencoder of Hinton & Salakhutdinov (2006);
    * ``'classification'``: a linear softmax head on the code (``module_.head``)
      is trained with the encoder on the cross-entropy
      ``-log softmax(V f(x_i) + c)_{y_i}``;
    * ``'nca'``: the encoder is trained with the Neighbourhood Components
      Analysis objective on the code (Salakhutdinov & Hinton, 2007). Within
      each mini-batch ``B``, sample ``i`` picks neighbour ``j`` with
      probability ``p_ij = exp(-||z_i - z_j||^2) / sum_{k in B, k != i}
      exp(-||z_i - z_k||^2)``, ``z = f(x)``, and the loss is the expected
      leave-one-out error ``1 - sum_{j: y_j = y_i} p_ij``, averaged over the
      batch. The result is a nonlinear NCA: k-nearest neighbours works well
      in the code space.

    In the two supervised modes the decoder keeps training, on the
    reconstruction loss ``mean_i L(x_i, g(f(x_i)))`` of the code as it is
    fine-tuned, so ``inverse_transform`` decodes the current code rather
    than the pretrained one. The gradient of that term reaches the encoder
    scaled by ``reconstruction_weight``: with 0 (the default) the code is
    shaped by the supervised loss alone and the decoder merely follows it;
    a positive weight makes the encoder's objective the supervised loss
    plus ``reconstruction_weight`` times the reconstruction loss, so the
    code also keeps what reconstruction needs. The reported ``loss_curve_``
    is supervised loss plus reconstruction loss, plus penalties.

    Parameters
    ----------
    {base_parameters}

    pretrain_max_iter : int, default=20
        Epochs of pretraining per layer (each stage also stops by the
        ``tol``/``n_iter_no_change`` rule). 0 skips pretraining: the deep
        network starts from a random initialisation. Every other training
        setting (optimiser, batch size, ``alpha``, ``early_stopping``) is
        shared by the stages and the fine-tuning. With ``early_stopping``
        the rows that fine-tuning holds out for validation are left out of
        pretraining too: each stage trains on the other rows and stops on
        the held-out ones. With ``encoder='conv'`` each convolution is
        pretrained as a one-layer convolutional autoencoder (convolution
        down, its transposed convolution up) on the feature maps below it,
        then the linear code layer. A user-supplied module cannot be
        pretrained layer by layer: it needs ``pretrain_max_iter=0`` (a
        ValueError otherwise), and StackedAE then trains it end to end.

    noise : {'masking', 'gaussian', 'salt_and_pepper'} or None, \
default=None
        Corruption of each layer's input during pretraining, which makes
        every stage a :class:`DenoisingAE` (stacked denoising autoencoders,
        Vincent et al., 2010): the stage sees a corrupted input and is
        trained to reconstruct the clean one. For the first layer the noise
        means what it means in :class:`DenoisingAE`, in the units of X
        ('masking' sets an entry to 0, a missing pixel, whatever
        ``normalize`` does); for the layers above it acts on the codes
        below. Fine-tuning always sees clean inputs. None: plain stages.

    noise_level : float, default=0.25
        Strength of the corruption, as in :class:`DenoisingAE`: the
        probability that an entry is corrupted for 'masking' and
        'salt_and_pepper' (in [0, 1]), the standard deviation for
        'gaussian'. Unused when ``noise=None``.

    fine_tune : {'reconstruction', 'classification', 'nca'}, \
default='reconstruction'
        Fine-tuning objective (see above). The supervised modes need ``y``.

    reconstruction_weight : float, default=0.0
        In the supervised modes, how much the reconstruction loss shapes
        the encoder (the decoder is trained on it in any case). Unused
        with ``fine_tune='reconstruction'``.

    Attributes
    ----------
    {base_attributes}

    pretrain_loss_curves_ : list of list of float
        Training loss per epoch of each pretraining stage, input layer
        first; empty when ``pretrain_max_iter=0``.

    classes_ : ndarray of shape (n_classes,)
        The class labels, in the supervised modes only.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Linear NCA.
    AutoencoderTransformer : The same network trained from a random start.

    References
    ----------
    .. [1] G. E. Hinton and R. R. Salakhutdinov, "Reducing the
       dimensionality of data with neural networks", Science 313(5786),
       504-507, 2006.
    .. [2] R. Salakhutdinov and G. E. Hinton, "Learning a nonlinear
       embedding by preserving class neighbourhood structure", AISTATS,
       2007.
    .. [3] Y. Bengio, P. Lamblin, D. Popovici and H. Larochelle, "Greedy
       layer-wise training of deep networks", NIPS, 2007.
    .. [4] P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and
       P.-A. Manzagol, "Stacked denoising autoencoders", JMLR 11, 2010.
    .. [5] J. Goldberger, S. Roweis, G. Hinton and R. Salakhutdinov,
       "Neighbourhood components analysis", NIPS, 2005.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skae import StackedAE
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> ae = StackedAE(n_components=8, hidden_layer_sizes=(32, 16),
    ...                pretrain_max_iter=5, max_iter=10, random_state=0,
    ...                device="cpu")
    >>> ae.fit_transform(X_train).shape
    (1347, 8)
    >>> [len(curve) for curve in ae.pretrain_loss_curves_]
    [5, 5, 5]
    >>> ae.inverse_transform(ae.transform(X_test)).shape
    (450, 64)

    With labels and ``fine_tune='nca'`` the 2-D code is made for nearest
    neighbours; compare 1-NN accuracy on held-out digits with PCA's:

    >>> nca = StackedAE(n_components=2, hidden_layer_sizes=(32,),
    ...                 fine_tune="nca", pretrain_max_iter=10, max_iter=30,
    ...                 random_state=0, device="cpu").fit(X_train, y_train)
    >>> pca = PCA(n_components=2).fit(X_train)
    >>> knn = KNeighborsClassifier(n_neighbors=1)
    >>> def accuracy(model):
    ...     knn.fit(model.transform(X_train), y_train)
    ...     return knn.score(model.transform(X_test), y_test)
    >>> bool(accuracy(nca) > accuracy(pca) + 0.1)
    True
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "pretrain_max_iter": [Interval(Integral, 0, None, closed="left")],
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "fine_tune": [StrOptions({"reconstruction", "classification", "nca"})],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
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
        pretrain_max_iter=20,
        noise=None,
        noise_level=0.25,
        fine_tune="reconstruction",
        reconstruction_weight=0.0,
    ):
        _store_params(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain layer by layer, then fine-tune the deep network.

        With ``warm_start=True`` and a fitted network, pretraining is skipped
        and fine-tuning continues.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels; required with ``fine_tune='classification'`` or
            ``'nca'``, ignored with ``'reconstruction'``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Fine-tune for one epoch on X, continuing from the current state.

        The first call pretrains the layers on this first chunk (and takes
        the input normalisation and, in the supervised modes, the classes
        from it); later calls only fine-tune.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or None, default=None
            Class labels, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator.
        """
        return self._fit(X, y, incremental=True)

    # ------------------------------------------------------------------
    # data and checks
    # ------------------------------------------------------------------
    @property
    def _supervised(self):
        return self.fine_tune in _SUPERVISED

    def _check_params(self, X):
        super()._check_params(X)
        check_noise_level(self.noise, self.noise_level)
        user = self.encoder not in (None, "conv") or self.decoder not in (None, "conv")
        if self.pretrain_max_iter and user:
            raise ValueError(
                "Greedy pretraining trains skae's own layers one by one; with a "
                "user-supplied module set pretrain_max_iter=0 (end-to-end training "
                f"only), got pretrain_max_iter={self.pretrain_max_iter}."
            )

    def _validate_fit_data(self, X, y, reset):
        if not self._supervised:
            if reset and hasattr(self, "classes_"):
                del self.classes_
            return super()._validate_fit_data(X, y, reset)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                f"is None: fine_tune={self.fine_tune!r} needs the class labels y: call "
                "fit(X, y), or use fine_tune='reconstruction' to fit without "
                "labels."
            )
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], accept_sparse=["csr", "csc"]
        )
        check_classification_targets(y)
        if reset or not hasattr(self, "classes_"):
            encoder = LabelEncoder().fit(y)
            if len(encoder.classes_) < 2:
                raise ValueError(
                    f"fine_tune={self.fine_tune!r} needs at least 2 classes in y, "
                    "got 1 class."
                )
            self.classes_ = encoder.classes_
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels not seen in the first fit: {unseen.tolist()}; "
                f"the classes are {self.classes_.tolist()}."
            )
        return X, np.searchsorted(self.classes_, y)

    def _to_target_tensor(self, y, device):
        if y is None:
            return None
        return torch.as_tensor(y, dtype=torch.long, device=device)

    def _module_spec(self, n_features):
        spec = super()._module_spec(n_features)
        spec["fine_tune"] = self.fine_tune
        spec["n_classes"] = len(self.classes_) if self._supervised else None
        return spec

    # ------------------------------------------------------------------
    # the network: pretrained stack, unrolled
    # ------------------------------------------------------------------
    def _build_module(self, n_features):
        module = super()._build_module(n_features)
        if self.fine_tune == "classification":
            module.head = build_module(nn.Linear, self.n_components, len(self.classes_))
        return module

    def _init_module(self, data, mean, scale):
        """Pretrain each layer on the codes below it; return the deep network.

        Only the training rows are trained on: with ``early_stopping`` the
        held-out rows stay unseen until validation.
        """
        module = self._build_module(data.X.shape[1])
        self.pretrain_loss_curves_ = []
        if self.pretrain_max_iter:
            greedy = pretrain_conv if "conv" in (self.encoder, self.decoder) else pretrain
            self.pretrain_loss_curves_ = greedy(self, module, data, mean, scale)
        if self.verbose and _distributed.is_lead():
            sizes = "-".join(map(str, (data.X.shape[1], *self._hidden_sizes(), self.n_components)))
            shape = "conv" if "conv" in (self.encoder, self.decoder) else sizes
            print(f"Fine-tuning the {shape} stack end to end ({self.fine_tune})")
        return module

    # ------------------------------------------------------------------
    # objectives
    # ------------------------------------------------------------------
    def _task_loss(self, module, code, y):
        """Per-sample supervised loss on the code."""
        if self.fine_tune == "classification":
            return F.cross_entropy(module.head(code), y, reduction="none")
        return nca_loss(code, y)

    def _reconstruction_loss(self, net, x, output):
        if self._supervised and self.reconstruction_weight != 1:
            # Decode a tensor equal to the code whose gradient reaches the
            # encoder scaled by reconstruction_weight (0: only the decoder
            # learns from the reconstruction).
            code = output[1]
            w = self.reconstruction_weight
            steered = code.detach() + w * (code - code.detach()) if w else code.detach()
            output = (net.module_.decoder(steered), *output[1:])
        return super()._reconstruction_loss(net, x, output)

    def _loss(self, net, x, x_in, y, output):
        loss = super()._loss(net, x, x_in, y, output)
        if self._supervised:
            loss = loss + self._task_loss(net.module_, output[1], y).mean()
        return loss

    def _loss_parts(self, net, x, y, output):
        parts = super()._loss_parts(net, x, y, output)
        if self._supervised:
            parts["train_task"] = self._task_loss(net.module_, output[1], y)
        return parts

    def _score_samples_model(self, module, x, y=None):
        """Per-sample score: minus the reconstruction error, or the task's.

        Without labels (``score_samples``), or with ``'reconstruction'``,
        the base's score. With labels in a supervised mode (the
        early-stopping validation score), minus the per-sample supervised
        objective: the task loss plus ``reconstruction_weight`` times the
        reconstruction loss.
        """
        if y is None or not self._supervised:
            return super()._score_samples_model(module, x, y)
        decoded, code = module(x)[:2]
        score = -self._task_loss(module, code, y)
        if self.reconstruction_weight:
            criterion = ReconstructionLoss(self._loss_name, self._output_activation)
            score = score - self.reconstruction_weight * criterion(decoded, x)
        return score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # y is required exactly when fine-tuning is supervised.
        tags.target_tags.required = self._supervised
        return tags
