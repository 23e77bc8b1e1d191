"""The plotting Displays: what they draw is the fitted data, laid out as documented."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import (
    AutoencoderTransformer,
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
)

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(X, **kw):
    params = dict(
        n_components=3,
        hidden_layer_sizes=(16,),
        max_iter=7,
        tol=0.0,
        n_iter_no_change=50,
        device="cpu",
        random_state=0,
    )
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AutoencoderTransformer(**params).fit(X)


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500]


@pytest.fixture(scope="module")
def stopped(data):
    # Early stopping on few rows with a high learning rate: the validation
    # score peaks before the last epoch.
    X = data[0][:100]
    # (Measured with seed 0: best epoch 15 of 16.)
    return _fit(X, early_stopping=True, learning_rate_init=0.05, batch_size=20, max_iter=16)


@pytest.fixture(scope="module")
def plain(data):
    return _fit(data[0], max_iter=3)


# ---------------------------------------------------------------- reconstructions


def test_reconstruction_images_are_originals_and_reconstructions(data, plain):
    X = data[0]
    disp = ReconstructionDisplay.from_estimator(plain, X, image_shape=(8, 8), n_images=5)
    assert disp.axes_.shape == (2, 5)
    image_axes = [ax for ax in disp.figure_.axes if ax.get_images()]
    assert len(image_axes) == 10
    recon = plain.inverse_transform(plain.transform(X[:5]))
    for c in range(5):
        np.testing.assert_allclose(disp.images_[0, c].get_array(), X[c].reshape(8, 8))
        np.testing.assert_allclose(disp.images_[1, c].get_array(), recon[c].reshape(8, 8))
        assert disp.images_[0, c].axes is disp.axes_[0, c]
    np.testing.assert_allclose(disp.errors_, ((X[:5] - recon) ** 2).sum(1))
    # One colour scale for both rows, the originals' range.
    assert {im.get_clim() for im in disp.images_.ravel()} == {(X[:5].min(), X[:5].max())}
    assert disp.axes_[0, 0].get_ylabel() == "original"
    assert disp.axes_[1, 0].get_ylabel() == "AutoencoderTransformer"


def test_reconstruction_works_with_pca_and_reuses_axes(data):
    X = data[0]
    pca = PCA(4).fit(X)
    fig, axes = plt.subplots(2, 3)
    disp = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), n_images=3, ax=axes)
    assert disp.figure_ is fig
    assert len(fig.axes) == 6
    assert all(a is b for a, b in zip(disp.axes_.ravel(), axes.ravel()))
    # One Axes: the grid of images goes inside it.
    fig, ax = plt.subplots()
    disp = ReconstructionDisplay.from_estimator(pca, X, image_shape=(8, 8), n_images=4, ax=ax)
    assert disp.bounding_ax_ is ax and not ax.axison
    assert len([a for a in fig.axes if a.get_images()]) == 8


def test_reconstruction_bad_shapes(data, plain):
    X = data[0]
    with pytest.raises(ValueError, match="image_shape=.*64 features"):
        ReconstructionDisplay.from_estimator(plain, X, image_shape=(7, 7))
    fig, axes = plt.subplots(2, 2)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        ReconstructionDisplay.from_estimator(plain, X, image_shape=(8, 8), n_images=3, ax=axes)


# ---------------------------------------------------------------- loss curves


def test_loss_curve_plots_the_fitted_curves(stopped):
    disp = LossCurveDisplay.from_estimator(stopped)
    epochs = np.arange(1, stopped.n_iter_ + 1)
    np.testing.assert_array_equal(disp.line_.get_xdata(), epochs)
    np.testing.assert_array_equal(disp.line_.get_ydata(), stopped.loss_curve_)
    np.testing.assert_array_equal(
        disp.validation_line_.get_ydata(), -np.asarray(stopped.validation_scores_)
    )
    assert disp.validation_line_.axes is disp.validation_ax_
    assert disp.validation_ax_ is not disp.ax_
    best = int(np.argmax(stopped.validation_scores_)) + 1
    assert best < stopped.n_iter_  # else "the last epoch" would pass too
    assert disp.best_epoch_ == best
    assert list(disp.best_epoch_line_.get_xdata()) == [best, best]
    assert stopped.validation_scores_[best - 1] == stopped.best_validation_score_
    # Units are on the axes.
    assert "normalised units" in disp.ax_.get_ylabel()
    assert "units of X" in disp.validation_ax_.get_ylabel()
    assert disp.ax_.get_xlabel() == "epoch"


def test_loss_curve_epoch_ticks_are_integers(plain):
    assert plain.n_iter_ == 3  # where a default locator puts ticks at 1.25, 1.5, ...
    disp = LossCurveDisplay.from_estimator(plain)
    disp.figure_.canvas.draw()
    ticks = disp.ax_.get_xticks()
    assert len(ticks) >= 2
    np.testing.assert_array_equal(ticks, np.round(ticks))


def test_loss_curve_without_early_stopping_and_reused_axes(data, plain):
    fig, ax = plt.subplots()
    disp = LossCurveDisplay.from_estimator(plain, ax=ax, log_scale=True)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert disp.validation_ax_ is None and disp.best_epoch_ is None
    assert len(ax.get_lines()) == 1 and len(fig.axes) == 1
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(disp.line_.get_ydata(), plain.loss_curve_)
    unscaled = _fit(data[0] / 16, normalize=None, max_iter=2)
    disp = LossCurveDisplay.from_estimator(unscaled)
    assert "units of X" in disp.ax_.get_ylabel()


def test_loss_curve_validation_covers_the_last_epochs():
    # After a warm start, validation_scores_ cover the last fit only.
    disp = LossCurveDisplay(
        loss_curve=[5.0, 4.0, 3.0, 2.5, 2.0, 1.8],
        validation_scores=[-10.0, -8.0, -9.0],
    ).plot()
    np.testing.assert_array_equal(disp.validation_line_.get_xdata(), [4, 5, 6])
    assert disp.best_epoch_ == 5


# ---------------------------------------------------------------- codes


def test_latent_space_offsets_are_the_codes(data, plain):
    X, y = data
    disp = LatentSpaceDisplay.from_estimator(plain, X, y, dims=(2, 0), label_name="digit")
    codes = plain.transform(X)
    np.testing.assert_allclose(disp.scatter_.get_offsets(), codes[:, [2, 0]])
    assert disp.ax_.get_xlabel() == "code dimension 2"
    assert disp.ax_.get_ylabel() == "code dimension 0"
    assert disp.colorbar_.ax.get_ylabel() == "digit"


def test_latent_space_colorbar_ticks_centred_on_classes(data, plain):
    X, y = data
    labels = np.array(["a", "b", "c", "d"])[y % 4]
    disp = LatentSpaceDisplay.from_estimator(plain, X, labels)
    cbar = disp.colorbar_
    bounds = disp.scatter_.norm.boundaries
    np.testing.assert_allclose(cbar.get_ticks(), (bounds[:-1] + bounds[1:]) / 2)
    assert [t.get_text() for t in cbar.ax.get_yticklabels()] == ["a", "b", "c", "d"]
    # The colour of each tick is the colour of that class's points.
    disp.figure_.canvas.draw()
    faces = disp.scatter_.get_facecolors()
    for tick, cls in zip(cbar.get_ticks(), ["a", "b", "c", "d"]):
        colour = disp.scatter_.cmap(disp.scatter_.norm(tick))
        mine = faces[labels == cls]
        np.testing.assert_allclose(mine, np.tile(colour, (len(mine), 1)))
    assert len({tuple(f) for f in faces}) == 4


def test_latent_space_reuses_axes_and_checks_dims(data, plain):
    X, y = data
    fig, ax = plt.subplots()
    disp = LatentSpaceDisplay.from_estimator(plain, X, ax=ax, colorbar=False)
    assert disp.ax_ is ax and disp.figure_ is fig and disp.colorbar_ is None
    disp.plot(ax=ax)  # draws again on the same axes, returns the display
    assert len(ax.collections) == 2
    for dims in [(0, 0), (0, 3), (1,)]:
        with pytest.raises(ValueError, match="dims"):
            LatentSpaceDisplay.from_estimator(plain, X, dims=dims)
    # Many classes: fewer ticks, still on class centres.
    disp = LatentSpaceDisplay.from_estimator(plain, X, np.arange(len(X)) % 45)
    ticks = disp.colorbar_.get_ticks()
    assert 10 <= len(ticks) <= 20
    np.testing.assert_array_equal(ticks, np.round(ticks))
    # A continuous label gets a continuous colour bar.
    disp = LatentSpaceDisplay.from_estimator(plain, X, X[:, 20] + 0.5)
    assert disp.colorbar_ is not None and not hasattr(disp.scatter_.norm, "boundaries")


# ---------------------------------------------------------------- matplotlib is optional


@pytest.mark.parametrize(
    "build",
    [
        lambda est, X: ReconstructionDisplay.from_estimator(est, X, image_shape=(8, 8)),
        lambda est, X: LossCurveDisplay.from_estimator(est),
        lambda est, X: LatentSpaceDisplay.from_estimator(est, X),
        lambda est, X: LossCurveDisplay(loss_curve=[1.0]).plot(),
        lambda est, X: LatentSpaceDisplay(np.zeros((2, 2))).plot(),
        lambda est, X: ReconstructionDisplay(X[:1], X[:1], image_shape=(8, 8)).plot(),
    ],
)
def test_without_matplotlib_the_error_names_the_extra(monkeypatch, data, plain, build):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"requires matplotlib.*`demo` extra"):
        build(plain, data[0])


@pytest.mark.slow  # a fresh interpreter imports torch (several seconds)
def test_importing_skae_does_not_import_matplotlib():
    code = "import sys, skae; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
