"""Training-time input corruption, shared by DenoisingAE and StackedAE.

Corruption acts on batches that are already in the model's (normalised)
space. What "zero", "the feature's minimum" and "one unit of X" mean there
is fixed once per fresh fit by :func:`noise_reference`, from the normalised
training tensor and the normalisation itself.
"""

import torch

from ._rng import current

NOISES = ("masking", "gaussian", "salt_and_pepper")


def check_noise_level(noise, noise_level):
    """Raise a ValueError when ``noise_level`` is not a probability for ``noise``."""
    if noise in ("masking", "salt_and_pepper") and noise_level > 1:
        raise ValueError(
            f"noise_level={noise_level} must be a probability in [0, 1] "
            f"for noise={noise!r}; only noise='gaussian' takes a "
            "standard deviation above 1."
        )


def noise_reference(X_t, mean, scale):
    """Model-space constants the corruption needs.

    Parameters
    ----------
    X_t : Tensor of shape (n_samples, n_features)
        The training data already normalised, ``(x - mean) / scale`` in
        float32 (the order statistics of a monotone map are the images of
        the raw ones, so the extremes need no second pass over raw X).
    mean, scale : array-like of shape (n_features,)
        The normalisation the model applies.

    Returns
    -------
    reference : dict of Tensor of shape (n_features,)
        ``'zero'``: the image of an input of 0 (a missing value);
        ``'low'``/``'high'``: the images of each feature's training minimum
        and maximum; ``'unit'``: ``1 / scale``, the model-space length of one
        unit of X. float32, on ``X_t``'s device.
    """
    like = dict(dtype=torch.float32, device=X_t.device)
    mean = torch.as_tensor(mean, **like)
    scale = torch.as_tensor(scale, **like)
    # The float32 operations applied to the training tensor, so a raw 0 in X
    # and a masked entry are the same number.
    zero = torch.zeros_like(mean).sub_(mean).div_(scale)
    if len(X_t):
        low, high = X_t.amin(dim=0), X_t.amax(dim=0)
    else:
        low = high = zero
    return {"zero": zero, "low": low, "high": high, "unit": 1.0 / scale}


def corrupt_batch(x, noise, noise_level, reference, generator=None):
    """Return a corrupted copy of the (normalised) batch ``x``.

    Every entry is corrupted independently:

    * ``'masking'``: with probability ``noise_level`` the entry becomes
      ``reference['zero']`` (0 in the user's units);
    * ``'gaussian'``: ``noise_level * reference['unit'] * N(0, 1)`` is added
      (a standard deviation of ``noise_level`` in the user's units);
    * ``'salt_and_pepper'``: with probability ``noise_level`` the entry becomes
      its feature's ``reference['high']`` or ``reference['low']``, each with
      probability one half.

    ``reference`` is what :func:`noise_reference` returns; tensors on
    another device are copied to ``x``'s. Random numbers come from
    ``generator`` (when None: the running fit's own, see
    :mod:`skae._rng`). With ``noise_level == 0`` ``x`` is returned as is
    and nothing is drawn, so training matches an uncorrupted autoencoder
    draw for draw.
    """
    if noise_level == 0:
        return x

    def ref(key):  # a no-op when the reference already sits on x's device
        return reference[key].to(device=x.device, dtype=x.dtype)

    if generator is None:
        generator = current(x.device)
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


def on_device(reference, device):
    """``reference`` with every tensor on ``device`` (the same dict if already)."""
    if reference["zero"].device == device:
        return reference
    return {k: v.to(device) for k, v in reference.items()}
