"""DenoisingAE: an autoencoder trained to rebuild clean inputs from corrupted ones."""

from ._base import _BaseAutoencoder, _store_params
from ._corruption import NOISES, check_noise_level, corrupt_batch, noise_reference, on_device
from ._docstrings import fill_doc
from ._validation import Interval, Real, StrOptions


@fill_doc
class DenoisingAE(_BaseAutoencoder):
    """Denoising autoencoder: reconstruct clean inputs from corrupted ones.

    Each training batch ``x`` is corrupted into ``x~ ~ q(x~ | x)``, the
    network encodes and decodes the corrupted batch, and the loss compares
    the reconstruction with the *clean* input:

    .. math::

        \\min_{f, g} \\; \\frac{1}{n} \\sum_i
        \\mathbb{E}_{\\tilde x_i \\sim q(\\cdot \\mid x_i)}
        \\, L\\big(x_i, g(f(\\tilde x_i))\\big).

    A plain autoencoder can reach a low loss by copying its input; a
    denoiser cannot, because it never sees the clean value it must output,
    so it has to learn the dependencies between features (the strokes of a
    digit) to fill in what the noise destroyed. The corruption ``q`` acts
    on each entry ``x_j`` independently, with ``nu = noise_level``:

    * ``'masking'``: ``x~_j = 0`` with probability ``nu``, else ``x_j``
      (0 in the units of X: a missing pixel, whatever ``normalize`` does).
      Vincent et al. zero a fixed number ``nu * n_features`` of entries per
      sample; independent draws give the same expected fraction.
    * ``'gaussian'``: ``x~_j = x_j + eps_j`` with ``eps_j ~ N(0, nu^2)``;
      ``nu`` is a standard deviation in the units of X.
    * ``'salt_and_pepper'``: with probability ``nu``, ``x~_j`` is set to
      ``max_j`` or ``min_j`` (a fair coin decides), the largest and smallest
      value of feature ``j`` in the training data; else ``x~_j = x_j``.
      Per-feature extremes keep every corrupted value inside its own
      feature's range, so the noise means the same thing for features in
      different units; for images whose pixels share one range they are the
      global extremes, except that a pixel which never varies stays as it is.

    The per-feature references (0, ``min_j``, ``max_j`` and the unit of X)
    are taken from the data of the first ``fit`` (or first ``partial_fit``)
    and kept when training continues with ``warm_start`` or ``partial_fit``.
    Noise is drawn from the fit's seeded generator, so the same
    ``random_state`` gives identical models, and with ``noise_level=0`` the
    model is exactly an :class:`AutoencoderTransformer` trained with the
    same seed.

    Corruption happens only while training: ``transform``,
    ``inverse_transform``, ``score``, ``score_samples``, :meth:`denoise` and
    the early-stopping validation score all see the data as given. To clean
    corrupted data, call :meth:`denoise` (the same as
    ``inverse_transform(transform(X))``).

    Parameters
    ----------
    {base_parameters}

    noise : {'masking', 'gaussian', 'salt_and_pepper'}, default='masking'
        The corruption applied to each training batch (see above).

    noise_level : float, default=0.25
        Strength of the corruption: for 'masking' and 'salt_and_pepper' the
        probability ``nu`` in [0, 1] that each entry is corrupted; for
        'gaussian' the noise's standard deviation in the units of X (>= 0).
        0 turns corruption off.

    Attributes
    ----------
    {base_attributes}

    See Also
    --------
    AutoencoderTransformer : The same network trained on clean inputs.
    ContractiveAE : Robustness from a penalty on the encoder's Jacobian
        instead of sampled input noise.
    StackedAE : Deep autoencoder pretrained layer by layer, optionally with
        this denoising criterion.
    sklearn.decomposition.PCA : Linear dimensionality reduction.

    References
    ----------
    .. [1] P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol,
       "Extracting and composing robust features with denoising
       autoencoders", Proceedings of the 25th International Conference on
       Machine Learning (ICML), 2008.
    .. [2] P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and
       P.-A. Manzagol, "Stacked denoising autoencoders: learning useful
       representations in a deep network with a local denoising criterion",
       Journal of Machine Learning Research 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> dae = DenoisingAE(n_components=16, hidden_layer_sizes=(64,),
    ...                   noise="masking", noise_level=0.25,
    ...                   max_iter=40, random_state=0, device="cpu").fit(X)
    >>> dae.transform(X[:5]).shape
    (5, 16)

    Knock out a quarter of the pixels and let the model fill them in;
    ``denoise`` is ``inverse_transform(transform(X))``:

    >>> rng = np.random.RandomState(0)
    >>> X_noisy = np.where(rng.uniform(size=X.shape) < 0.25, 0.0, X)
    >>> X_clean = dae.denoise(X_noisy)
    >>> X_clean.shape
    (1797, 64)
    >>> bool(((X_clean - X) ** 2).sum(1).mean() < ((X_noisy - X) ** 2).sum(1).mean())
    True
    """

    _parameter_constraints = {
        **_BaseAutoencoder._parameter_constraints,
        "noise": [StrOptions(set(NOISES))],
        "noise_level": [Interval(Real, 0, None, closed="left")],
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
        noise="masking",
        noise_level=0.25,
    ):
        _store_params(self, locals())

    # ------------------------------------------------------------------
    # hooks
    # ------------------------------------------------------------------
    def _check_params(self, X):
        super()._check_params(X)
        check_noise_level(self.noise, self.noise_level)

    def _init_module(self, data, mean, scale):
        # A fresh fit fixes what the noise means in the model's space;
        # warm_start and partial_fit keep the first fit's references.
        self._noise_reference = noise_reference(data.X, mean, scale)
        return super()._init_module(data, mean, scale)

    def _corrupt(self, x):
        # Moved once per fit when it was made (or unpickled) elsewhere.
        self._noise_reference = on_device(self._noise_reference, x.device)
        return corrupt_batch(x, self.noise, self.noise_level, self._noise_reference)

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def denoise(self, X):
        """Reconstruct clean samples from (possibly corrupted) X.

        The same as ``inverse_transform(transform(X))`` in one pass: encode
        X as given (no corruption is added) and decode. Entries that the
        noise destroyed (masked pixels, outliers) are filled in from what the
        model learned about the other features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, e.g. with missing values set to 0.

        Returns
        -------
        X_denoised : ndarray of shape (n_samples, n_features)
            The reconstructions, in X's floating dtype.
        """
        X = self._check_inference_input(X)
        return self._run(X, lambda e, x: e.decode(e.encode(x)))
