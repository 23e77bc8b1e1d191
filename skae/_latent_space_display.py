"""LatentSpaceDisplay: 2-D codes coloured by a label."""

import numpy as np
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._plotting import check_matplotlib, new_axes


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
        check_matplotlib(f"{cls.__name__}.from_estimator")
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
        check_matplotlib(f"{type(self).__name__}.plot")
        codes = np.asarray(self.codes)
        i, j = _checked_dims(codes, self.dims)
        kwargs = {"s": 12}
        kwargs.update(scatter_kwargs or {})
        ax = new_axes(ax, figsize=(6.4, 5.0))
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
                index, cmap, norm, ticks = _class_colours(labels, cmap)
                self.scatter_ = ax.scatter(
                    codes[:, i], codes[:, j], c=index, cmap=cmap, norm=norm, **kwargs
                )
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


def _checked_dims(codes, dims):
    """The two code dimensions to plot, as ints, checked against ``codes``."""
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(
            "LatentSpaceDisplay needs codes with at least 2 dimensions, got shape "
            f"{codes.shape}."
        )
    dims = tuple(dims)
    if (
        len(dims) != 2
        or dims[0] == dims[1]
        or not all(isinstance(d, (int, np.integer)) and 0 <= d < codes.shape[1] for d in dims)
    ):
        raise ValueError(
            f"dims must be two different ints in [0, {codes.shape[1] - 1}], got {dims!r}."
        )
    return int(dims[0]), int(dims[1])


def _class_colours(labels, cmap):
    """Class index per point, a k-colour map, its norm and the colour-bar ticks.

    k colours and bins centred on 0, 1, ..., k-1: each tick sits in the
    middle of its class's colour; at most about 20 ticks are labelled.
    """
    import matplotlib as mpl

    classes, index = np.unique(labels, return_inverse=True)
    k = classes.size
    if cmap is None:
        cmap = "tab10" if k <= 10 else "tab20" if k <= 20 else "viridis"
    base = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    if isinstance(base, mpl.colors.ListedColormap) and base.N >= k:
        cmap = mpl.colors.ListedColormap(base.colors[:k])  # tab10's first k
    else:
        cmap = base.resampled(k)
    norm = mpl.colors.BoundaryNorm(np.arange(k + 1) - 0.5, k)
    step = -(-k // 20)
    ticks = (np.arange(0, k, step), [str(c) for c in classes[::step]])
    return index, cmap, norm, ticks
