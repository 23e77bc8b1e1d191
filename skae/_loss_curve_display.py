"""LossCurveDisplay: the training curve and, with early stopping, the validation curve."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._plotting import check_matplotlib, new_axes


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
        check_matplotlib(f"{cls.__name__}.from_estimator")
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
        check_matplotlib(f"{type(self).__name__}.plot")
        from matplotlib.ticker import LogFormatter, MaxNLocator

        def log_y(axes):
            # Plain numbers (60, 40, 30), not 6x10^1, on axes that span less
            # than a decade or two, as loss curves often do.
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(LogFormatter())
            axes.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(1, 0.4)))

        ax = new_axes(ax, figsize=(6.4, 4.0))
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
