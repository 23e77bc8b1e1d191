"""DenoisingAE: an autoencoder trained to rebuild clean inputs from corrupted ones."""

import numpy as np
import torch

from ._base import _BaseAutoencoder, _store_params
from ._docstrings import fill_doc
from ._validation import Interval, Real, StrOptions

_NOISES = ("masking", "gaussian", "salt_and_pepper")


def _noise_reference(X, mean, scale):
    """Model-space constants the corruption needs, from the raw training data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data in the user's units.
    mean, scale : ndarray of shape (n_features,)
        The normalisation the model applies, ``(x - mean) / scale``.

    Returns
    -------
    reference : dict of Tensor of shape (n_features,)
        ``'zero'``: the image of an input of 0 (a missing value);
        ``'low'``/``'high'``: the images of each feature's training minimum
        and maximum; ``'unit'``: ``1 / scale``, the model-space length of one
        unit of X. float32, on the CPU.
    """
    mean = torch.as_tensor(mean, dtype=torch.float32)
    scale = torch.as_tensor(scale, dtype=torch.float32)

    def to_model(v):
        # The float32 operations the base applies to the training tensor, so
        # a raw 0 in X and a masked entry are the same number.
        return torch.as_tensor(v, dtype=torch.float32).sub_(mean).div_(scale)

    return {
        "zero": to_model(np.zeros(X.shape[1])),
        "low": to_model(X.min(axis=0)),
        "high": to_model(X.max(axis=0)),
        "unit": 1.0 / scale,
    }


def _corrupt_batch(x, noise, noise_level, reference, generator=None):
    """Return a corrupted copy of the (normalised) batch ``x``.

    Every entry is corrupted independently:

    * ``'masking'``: with probability ``noise_level`` the entry becomes
      ``reference['zero']`` (0 in the user's units);
    * ``'gaussian'``: ``noise_level * reference['unit'] * N(0, 1)`` is added
      (a standard deviation of ``noise_level`` in the user's units);
    * ``'salt_and_pepper'``: with probability ``noise_level`` the entry becomes
      its feature's ``reference['high']`` or ``reference['low']``, each with
      probability one half.

    ``reference`` is what :func:`_noise_reference` returns; tensors on
    another device are copied to ``x``'s (keep them there to avoid a copy per
    batch). Random numbers come from ``generator`` (torch's global generator
    when None, which the estimator's fit has forked and seeded). With
    ``noise_level == 0`` ``x`` is returned as is and nothing is drawn, so
    training matches an uncorrupted autoencoder draw for draw.
    """
    if noise_level == 0:
        return x

    def ref(key):  # a no-op when the reference already sits on x's device
        return reference[key].to(device=x.device, dtype=x.dtype)

    draw = dict(generator=generator, dtype=x.dtype, device=x.device)
    if noise == "gaussian":
        return x + torch.randn(x.shape, **draw) * (noise_level * ref("unit"))
    u = torch.rand(x.shape, **draw)
    if noise == "masking":
        return torch.where(u < noise_level, ref("zero"), x)
    # One uniform per entry decides both whether and which way: u below
    # noise_level / 2 is salt (the maximum), up to noise_level pepper.
    value = torch.where(u < 0.5 * noise_level, ref("high"), ref("low"))
    return torch.where(u < noise_level, value, x)


@fill_doc
class DenoisingAE(_BaseAutoencoder):
    """Denoising autoencoder: reconstruct clean inputs from corrupted ones.

    Each training batch ``x`` is corrupted into ``x~ ~ q(x~ | x)``, the
    network encodes and decodes the corrupted batch, and the loss compares
    the reconstruction with the *clean* input:

    .. math::

        \\min_{{f, g}} \\; \\frac{{1}}{{n}} \\sum_i
        \\mathbb{{E}}_{{\\tilde x_i \\sim q(\\cdot \\mid x_i)}}
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

    noise : {{'masking', 'gaussian', 'salt_and_pepper'}}, default='masking'
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
        "noise": [StrOptions(set(_NOISES))],
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
        noise="masking",
        noise_level=0.25,
    ):
        _store_params(self, locals())

    # ------------------------------------------------------------------
    # hooks
    # ------------------------------------------------------------------
    def _check_params(self, X):
        super()._check_params(X)
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level > 1:
            raise ValueError(
                f"noise_level={self.noise_level} must be a probability in [0, 1] "
                f"for noise={self.noise!r}; only noise='gaussian' takes a "
                "standard deviation above 1."
            )

    def _normalization_stats(self, X):
        # Called once per fresh fit, with the raw training data, just before
        # it is normalised: the one place that sees both the data in the
        # user's units and the normalisation. warm_start and partial_fit
        # continue without calling it, so the first fit's references stay.
        mean, scale = super()._normalization_stats(X)
        self._noise_reference = _noise_reference(X, mean, scale)
        return mean, scale

    def _corrupt(self, x):
        reference = self._noise_reference
        if reference["zero"].device != x.device:
            # Computed on the CPU (or unpickled there) and trained on a GPU:
            # moved once per fit, not on every batch.
            reference = {k: v.to(x.device) for k, v in reference.items()}
            self._noise_reference = reference
        return _corrupt_batch(x, self.noise, self.noise_level, reference)

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

    # ------------------------------------------------------------------
    # pickling: the references live on the training device; store them on
    # the CPU so a GPU-fitted model loads anywhere.
    # ------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        if "_noise_reference" in state:
            state["_noise_reference"] = {
                k: v.cpu() for k, v in state["_noise_reference"].items()
            }
        return state
