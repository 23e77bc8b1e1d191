"""ReconstructionDisplay: originals above their reconstructions."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._plotting import check_matplotlib


class ReconstructionDisplay:
    """Original images above their reconstructions.

    It is recommended to use :meth:`from_estimator` to create a
    ``ReconstructionDisplay``; all parameters are stored as attributes. The
    reconstruction of ``x`` is ``inverse_transform(transform(x))``, so any
    fitted transformer with an ``inverse_transform`` works (skae's
    estimators, :class:`~sklearn.decomposition.PCA`, a pipeline of them).

    See :ref:`quick_start:Plotting a fitted model` in the documentation.

    Parameters
    ----------
    X : ndarray of shape (n_images, n_features)
        Original images, one flattened image per row.

    X_reconstructed : ndarray of shape (n_images, n_features)
        Their reconstructions.

    image_shape : tuple of int
        Shape of one image, e.g. ``(8, 8)``; its product is ``n_features``.

    estimator_name : str, default=None
        Name of the model, written in the row label of the reconstructions.

    Attributes
    ----------
    errors_ : ndarray of shape (n_images,)
        Sum of squared errors of each reconstruction, in the units of X
        squared (shown under each reconstruction).

    axes_ : ndarray of matplotlib Axes, shape (2, n_images)
        Row 0 holds the originals, row 1 the reconstructions.

    images_ : ndarray of matplotlib AxesImage, shape (2, n_images)
        The drawn images, laid out as ``axes_``.

    figure_ : matplotlib Figure
        Figure containing the images.

    See Also
    --------
    LatentSpaceDisplay : The codes of the same data in two dimensions.
    LossCurveDisplay : How training went.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, ReconstructionDisplay
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, hidden_layer_sizes=(32,),
    ...                             max_iter=5, device="cpu", random_state=0)
    >>> ae = ae.fit(X)
    >>> disp = ReconstructionDisplay.from_estimator(ae, X, image_shape=(8, 8), n_images=6)
    >>> disp.axes_.shape
    (2, 6)
    """

    def __init__(self, X, X_reconstructed, *, image_shape, estimator_name=None):
        self.X = X
        self.X_reconstructed = X_reconstructed
        self.image_shape = image_shape
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        image_shape,
        n_images=8,
        name=None,
        ax=None,
        cmap="gray_r",
        vmin=None,
        vmax=None,
    ):
        """Reconstruct the first ``n_images`` rows of X and plot them.

        Parameters
        ----------
        estimator : fitted transformer with ``inverse_transform``
            E.g. a fitted :class:`~skae.AutoencoderTransformer`.

        X : array-like of shape (n_samples, n_features)
            Images, one flattened image per row.

        image_shape : tuple of int
            Shape of one image, e.g. ``(8, 8)``.

        n_images : int, default=8
            Number of images (the first rows of X) to show.

        name : str, default=None
            Name of the model in the row label; the estimator's class name
            when None.

        ax : matplotlib Axes or array of Axes of shape (2, n_images), \
default=None
            Where to draw; see :meth:`plot`.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colour map of the images.

        vmin, vmax : float, default=None
            Colour limits shared by all images; the range of the originals
            when None, so that originals and reconstructions compare.

        Returns
        -------
        display : ReconstructionDisplay
        """
        check_matplotlib(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        if n_images < 1:
            raise ValueError(f"n_images must be at least 1, got {n_images}.")
        X = X.iloc[:n_images] if hasattr(X, "iloc") else X[:n_images]
        X_rec = estimator.inverse_transform(estimator.transform(X))
        name = type(estimator).__name__ if name is None else name
        disp = cls(np.asarray(X), np.asarray(X_rec), image_shape=image_shape, estimator_name=name)
        return disp.plot(ax=ax, cmap=cmap, vmin=vmin, vmax=vmax)

    def plot(self, ax=None, *, cmap="gray_r", vmin=None, vmax=None):
        """Draw the originals (top row) and the reconstructions (bottom row).

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes of shape (2, n_images), \
default=None
            None makes a new figure. One Axes is used as the bounding box of
            the grid of images (it is switched off and kept as
            ``bounding_ax_``). An array of ``2 * n_images`` Axes is drawn
            into as given, row 0 the originals.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colour map of the images.

        vmin, vmax : float, default=None
            Colour limits shared by all images; the range of the originals
            when None.

        Returns
        -------
        display : ReconstructionDisplay
            Object that stores the computed values and the drawn artists.
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        X = np.asarray(self.X, dtype=float)
        X_rec = np.asarray(self.X_reconstructed, dtype=float)
        if X.ndim != 2 or X.shape != X_rec.shape:
            raise ValueError(
                "X and X_reconstructed must be 2-D arrays of the same shape, got "
                f"{X.shape} and {X_rec.shape}."
            )
        shape = tuple(int(s) for s in self.image_shape)
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(
                f"image_shape={self.image_shape} has {int(np.prod(shape))} pixels, but X "
                f"has {X.shape[1]} features."
            )
        n = X.shape[0]
        fig, axes, self.bounding_ax_ = _image_grid(ax, n)
        vmin = float(X.min()) if vmin is None else vmin
        vmax = float(X.max()) if vmax is None else vmax
        self.errors_ = ((X - X_rec) ** 2).sum(axis=1)
        images = np.empty((2, n), dtype=object)
        for r, data in enumerate((X, X_rec)):
            for c in range(n):
                a = axes[r, c]
                images[r, c] = a.imshow(
                    data[c].reshape(shape), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
                )
                a.set_xticks([])
                a.set_yticks([])
        for c in range(n):
            # SE: the sum of squared errors of the image, in X's units squared.
            axes[1, c].set_xlabel(f"SE {self.errors_[c]:.3g}", fontsize="small")
        name = self.estimator_name or "reconstruction"
        axes[0, 0].set_ylabel("original", rotation=0, ha="right", va="center")
        axes[1, 0].set_ylabel(name, rotation=0, ha="right", va="center")
        self.axes_ = axes
        self.images_ = images
        self.figure_ = fig
        return self


# ----------------------------------------------------------------------
# Loss curves


def _image_grid(ax, n):
    """``(figure, axes of shape (2, n), bounding axes or None)`` for ``ax``.

    ``ax`` is None (a new figure), one subplot (the grid is drawn inside it)
    or an array of axes of shape ``(2, n)``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(2, n, figsize=(0.9 * n + 1.2, 2.3), squeeze=False)
        return fig, axes, None
    if hasattr(ax, "get_subplotspec"):
        if ax.get_subplotspec() is None:
            raise ValueError(
                "ax must be a subplot (e.g. from plt.subplots) to hold the grid of images."
            )
        fig = ax.figure
        ax.set_axis_off()
        grid = ax.get_subplotspec().subgridspec(2, n)
        axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(n)] for r in range(2)])
        return fig, axes, ax
    axes = np.asarray(ax, dtype=object)
    if axes.shape != (2, n):
        raise ValueError(
            f"ax must be one Axes or an array of Axes of shape (2, {n}), got "
            f"shape {axes.shape}."
        )
    return axes[0, 0].figure, axes, None
