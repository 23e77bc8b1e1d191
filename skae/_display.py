"""Plotting helpers in scikit-learn's Display style.

Each Display is built with a ``from_estimator`` classmethod (or directly from
arrays), draws with ``plot(ax=None, ...)`` which returns the Display, and
keeps the matplotlib objects it drew as attributes (``figure_``, ``ax_`` and
the artists) so that a figure can be adjusted afterwards.

matplotlib is optional: it is imported only when something is drawn, and a
missing matplotlib raises an ImportError that says how to install it.
"""

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

__all__ = ["LatentSpaceDisplay", "LossCurveDisplay", "ReconstructionDisplay"]


def _check_matplotlib(caller_name):
    """scikit-learn's check, with the way to get matplotlib along with skae."""
    try:
        check_matplotlib_support(caller_name)
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, which skae does not install by "
            "default. Install it with `pip install matplotlib`, or install skae "
            "with its `demo` extra (`pip install \".[demo]\"` in a clone of skae)."
        ) from exc


def _new_axes(ax, **subplots_kwargs):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(**subplots_kwargs)
    return ax


# ----------------------------------------------------------------------
# Reconstructions
# ----------------------------------------------------------------------


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
        _check_matplotlib(f"{cls.__name__}.from_estimator")
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
        _check_matplotlib(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

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
        self.bounding_ax_ = None
        if ax is None:
            fig, axes = plt.subplots(2, n, figsize=(0.9 * n + 1.2, 2.3), squeeze=False)
        elif hasattr(ax, "get_subplotspec"):
            if ax.get_subplotspec() is None:
                raise ValueError(
                    "ax must be a subplot (e.g. from plt.subplots) to hold the grid of images."
                )
            fig = ax.figure
            ax.set_axis_off()
            self.bounding_ax_ = ax
            grid = ax.get_subplotspec().subgridspec(2, n)
            axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(n)] for r in range(2)])
        else:
            axes = np.asarray(ax, dtype=object)
            if axes.shape != (2, n):
                raise ValueError(
                    f"ax must be one Axes or an array of Axes of shape (2, {n}), got "
                    f"shape {axes.shape}."
                )
            fig = axes[0, 0].figure
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
# ----------------------------------------------------------------------


class LossCurveDisplay:
    """Training objective per epoch and, with early stopping, the validation error.

    It is recommended to use :meth:`from_estimator` to create a
    ``LossCurveDisplay``; all parameters are stored as attributes.

    The two curves are in different units, so they get different y axes:

    - ``loss_curve_`` (left axis) is the training objective averaged over the
      epoch, computed on the data as the network sees them, i.e. after the
      estimator's input normalisation (``(X - mean_) / scale_``), penalties
      included;
    - ``validation_scores_`` (right axis, a twin of the first) are means of
      ``score_samples`` on the held-out rows, in the units of X (minus the
      squared error per sample for ``loss='squared_error'``, the ELBO in nats
      for :class:`~skae.VariationalAE`). The display plots **minus** the
      score, so that lower is better on both axes.

    The epoch of the best validation score, whose weights early stopping
    restores, is marked with a vertical line.

    See :ref:`quick_start:Plotting a fitted model` in the documentation.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Training objective of each epoch.

    validation_scores : array-like of shape (n_validation_epochs,), default=None
        Validation score (higher is better) of the last
        ``n_validation_epochs`` epochs; None without early stopping.

    normalized : bool, default=True
        Whether ``loss_curve`` is in normalised units (it is when the
        estimator scaled its input); only changes the axis label.

    estimator_name : str, default=None
        Name of the model, used as the title.

    Attributes
    ----------
    best_epoch_ : int or None
        Epoch (counted from 1) of the best validation score, None without
        validation scores.

    line_ : matplotlib Line2D
        The training curve.

    validation_line_ : matplotlib Line2D or None
        The validation curve (minus the scores).

    best_epoch_line_ : matplotlib Line2D or None
        Vertical line at ``best_epoch_``.

    ax_ : matplotlib Axes
        Axes of the training curve.

    validation_ax_ : matplotlib Axes or None
        Twin axes of the validation curve.

    figure_ : matplotlib Figure
        Figure containing the curves.

    See Also
    --------
    ReconstructionDisplay : Originals above reconstructions.
    LatentSpaceDisplay : Codes in two dimensions.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, LossCurveDisplay
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, hidden_layer_sizes=(32,), max_iter=6,
    ...                             early_stopping=True, device="cpu", random_state=0)
    >>> ae = ae.fit(X)
    >>> disp = LossCurveDisplay.from_estimator(ae)
    >>> len(disp.line_.get_ydata()) == ae.n_iter_
    True
    """

    def __init__(self, *, loss_curve, validation_scores=None, normalized=True, estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.normalized = normalized
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, name=None, ax=None, log_scale=False):
        """Plot the fitted ``loss_curve_`` and ``validation_scores_``.

        Parameters
        ----------
        estimator : fitted skae estimator
            Anything with ``loss_curve_`` (and ``validation_scores_``, None
            without early stopping).

        name : str, default=None
            Title; the estimator's class name when None.

        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        log_scale : bool, default=False
            Logarithmic y axes.

        Returns
        -------
        display : LossCurveDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator, "loss_curve_")
        scale = getattr(estimator, "scale_", None)
        normalized = scale is None or not np.all(np.asarray(scale) == 1)
        disp = cls(
            loss_curve=estimator.loss_curve_,
            validation_scores=getattr(estimator, "validation_scores_", None),
            normalized=normalized,
            estimator_name=type(estimator).__name__ if name is None else name,
        )
        return disp.plot(ax=ax, log_scale=log_scale)

    def plot(self, ax=None, *, log_scale=False, legend=True):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None. The validation curve
            goes on a twin of it.

        log_scale : bool, default=False
            Logarithmic y axes.

        legend : bool, default=True
            Draw a legend above the axes (outside the data).

        Returns
        -------
        display : LossCurveDisplay
            Object that stores the drawn artists.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        from matplotlib.ticker import LogFormatter, MaxNLocator

        def log_y(axes):
            # Plain numbers (60, 40, 30), not 6x10^1, on axes that span less
            # than a decade or two, as loss curves often do.
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(LogFormatter())
            axes.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(1, 0.4)))

        ax = _new_axes(ax, figsize=(6.4, 4.0))
        loss = np.asarray(self.loss_curve, dtype=float)
        epochs = np.arange(1, loss.size + 1)
        (self.line_,) = ax.plot(epochs, loss, color="C0", label="training objective")
        units = "normalised units" if self.normalized else "units of X"
        ax.set_ylabel(f"training objective ({units})", color="C0")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_scale:
            log_y(ax)
        handles = [self.line_]
        self.validation_ax_ = self.validation_line_ = self.best_epoch_line_ = None
        self.best_epoch_ = None
        if self.validation_scores is not None and len(self.validation_scores):
            scores = np.asarray(self.validation_scores, dtype=float)
            # With warm_start the validation scores cover the last fit only:
            # its epochs are the last ones of loss_curve.
            v_epochs = np.arange(loss.size - scores.size + 1, loss.size + 1)
            ax2 = ax.twinx()
            (self.validation_line_,) = ax2.plot(
                v_epochs, -scores, color="C1", label="validation error (−score)"
            )
            ax2.set_ylabel("validation error: −mean score_samples\n(units of X)", color="C1")
            if log_scale:
                log_y(ax2)
            # The first maximum: the epoch whose weights early stopping keeps.
            self.best_epoch_ = int(v_epochs[np.nanargmax(scores)])
            self.best_epoch_line_ = ax.axvline(
                self.best_epoch_,
                color="gray",
                linestyle=":",
                label=f"best validation epoch ({self.best_epoch_})",
            )
            self.validation_ax_ = ax2
            handles += [self.validation_line_, self.best_epoch_line_]
        if self.estimator_name:
            ax.set_title(self.estimator_name, pad=30 if legend else None)
        if legend:
            ax.legend(
                handles=handles,
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncol=len(handles),
                frameon=False,
                fontsize="small",
                borderaxespad=0.2,
            )
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


# ----------------------------------------------------------------------
# Codes
# ----------------------------------------------------------------------


class LatentSpaceDisplay:
    """Codes of the data in two dimensions, coloured by a label.

    It is recommended to use :meth:`from_estimator` to create a
    ``LatentSpaceDisplay``; all parameters are stored as attributes. Works
    with any fitted transformer (skae's estimators, PCA, ...).

    Class labels get one colour each and a colour bar whose ticks sit in the
    middle of each class's colour; a continuous label gets a continuous
    colour bar.

    See :ref:`quick_start:Plotting a fitted model` in the documentation.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, n_components)
        The transformed data.

    labels : array-like of shape (n_samples,), default=None
        What colours the points: class labels or a continuous value.

    dims : tuple of two int, default=(0, 1)
        The two code dimensions shown, on the x and y axes.

    label_name : str, default=None
        Label of the colour bar.

    estimator_name : str, default=None
        Name of the model, used as the title.

    Attributes
    ----------
    scatter_ : matplotlib PathCollection
        The points.

    colorbar_ : matplotlib Colorbar or None
        The colour bar, None without labels or with ``colorbar=False``.

    ax_ : matplotlib Axes
        Axes with the scatter plot.

    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    ReconstructionDisplay : Originals above reconstructions.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, LatentSpaceDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(32,),
    ...                             max_iter=5, device="cpu", random_state=0)
    >>> ae = ae.fit(X)
    >>> disp = LatentSpaceDisplay.from_estimator(ae, X, y, dims=(0, 2), label_name="digit")
    >>> disp.ax_.get_xlabel(), disp.ax_.get_ylabel()
    ('code dimension 0', 'code dimension 2')
    """

    def __init__(self, codes, *, labels=None, dims=(0, 1), label_name=None, estimator_name=None):
        self.codes = codes
        self.labels = labels
        self.dims = dims
        self.label_name = label_name
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y=None,
        *,
        dims=(0, 1),
        label_name=None,
        name=None,
        ax=None,
        cmap=None,
        colorbar=True,
        scatter_kwargs=None,
    ):
        """Transform X and plot two code dimensions coloured by y.

        Parameters
        ----------
        estimator : fitted transformer
            E.g. a fitted :class:`~skae.AutoencoderTransformer`.

        X : array-like of shape (n_samples, n_features)
            Data to encode.

        y : array-like of shape (n_samples,), default=None
            Labels that colour the points.

        dims : tuple of two int, default=(0, 1)
            The code dimensions on the x and y axes.

        label_name : str, default=None
            Label of the colour bar ("label" when None).

        name : str, default=None
            Title; the estimator's class name when None.

        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        cmap : str or matplotlib Colormap, default=None
            None picks "tab10" (up to 10 classes), "tab20" (up to 20),
            else "viridis".

        colorbar : bool, default=True
            Draw a colour bar when there are labels.

        scatter_kwargs : dict, default=None
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator)
        disp = cls(
            np.asarray(estimator.transform(X)),
            labels=y,
            dims=dims,
            label_name=label_name,
            estimator_name=type(estimator).__name__ if name is None else name,
        )
        return disp.plot(ax=ax, cmap=cmap, colorbar=colorbar, scatter_kwargs=scatter_kwargs)

    def plot(self, ax=None, *, cmap=None, colorbar=True, scatter_kwargs=None):
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        cmap : str or matplotlib Colormap, default=None
            None picks "tab10" (up to 10 classes), "tab20" (up to 20),
            else "viridis".

        colorbar : bool, default=True
            Draw a colour bar when there are labels.

        scatter_kwargs : dict, default=None
            Passed to :meth:`matplotlib.axes.Axes.scatter`.

        Returns
        -------
        display : LatentSpaceDisplay
            Object that stores the drawn artists.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        import matplotlib as mpl

        codes = np.asarray(self.codes)
        if codes.ndim != 2 or codes.shape[1] < 2:
            raise ValueError(
                "LatentSpaceDisplay needs codes with at least 2 dimensions, got shape "
                f"{codes.shape}."
            )
        dims = tuple(self.dims)
        if (
            len(dims) != 2
            or dims[0] == dims[1]
            or not all(isinstance(d, (int, np.integer)) and 0 <= d < codes.shape[1] for d in dims)
        ):
            raise ValueError(
                f"dims must be two different ints in [0, {codes.shape[1] - 1}], got {self.dims!r}."
            )
        i, j = (int(d) for d in dims)
        kwargs = {"s": 12}
        kwargs.update(scatter_kwargs or {})
        ax = _new_axes(ax, figsize=(6.4, 5.0))
        self.colorbar_ = None
        if self.labels is None:
            self.scatter_ = ax.scatter(codes[:, i], codes[:, j], **kwargs)
        else:
            labels = np.asarray(self.labels)
            if labels.shape != (codes.shape[0],):
                raise ValueError(
                    f"labels must have shape ({codes.shape[0]},), got {labels.shape}."
                )
            if type_of_target(labels) == "continuous":
                cmap = "viridis" if cmap is None else cmap
                self.scatter_ = ax.scatter(codes[:, i], codes[:, j], c=labels, cmap=cmap, **kwargs)
                ticks = None
            else:
                classes, index = np.unique(labels, return_inverse=True)
                k = classes.size
                if cmap is None:
                    cmap = "tab10" if k <= 10 else "tab20" if k <= 20 else "viridis"
                # k colours and bins centred on 0, 1, ..., k-1: each tick sits
                # in the middle of its class's colour.
                base = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
                if isinstance(base, mpl.colors.ListedColormap) and base.N >= k:
                    cmap = mpl.colors.ListedColormap(base.colors[:k])  # tab10's first k
                else:
                    cmap = base.resampled(k)
                norm = mpl.colors.BoundaryNorm(np.arange(k + 1) - 0.5, k)
                self.scatter_ = ax.scatter(
                    codes[:, i], codes[:, j], c=index, cmap=cmap, norm=norm, **kwargs
                )
                # At most about 20 labelled ticks, still on class centres.
                step = -(-k // 20)
                ticks = (np.arange(0, k, step), [str(c) for c in classes[::step]])
            if colorbar:
                fig = ax.figure
                self.colorbar_ = fig.colorbar(self.scatter_, ax=ax)
                if ticks is not None:
                    self.colorbar_.set_ticks(ticks[0], labels=ticks[1])
                    self.colorbar_.ax.tick_params(length=0)
                    self.colorbar_.minorticks_off()
                self.colorbar_.set_label(self.label_name or "label")
        ax.set_xlabel(f"code dimension {i}")
        ax.set_ylabel(f"code dimension {j}")
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
