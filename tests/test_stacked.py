"""StackedAE: greedy pretraining, fine-tuning, and the supervised modes (issue 6)."""

import copy
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.utils.estimator_checks import check_estimator
from skorch.callbacks import Callback

import skae
from skae import AutoencoderTransformer, StackedAE

CPU = dict(device="cpu", random_state=0)


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def _error(model, X):
    return ((X - model.inverse_transform(model.transform(X))) ** 2).sum(1).mean()


def _knn_accuracy(model, X_train, X_test, y_train, y_test):
    """1-NN accuracy on the held-out split, in ``model``'s code."""
    knn = KNeighborsClassifier(n_neighbors=1).fit(model.transform(X_train), y_train)
    return knn.score(model.transform(X_test), y_test)


# ----------------------------------------------------------------------
# the deep autoencoder
# ----------------------------------------------------------------------
def test_pretrained_deep_autoencoder_beats_pca_on_held_out_digits(split):
    X_train, X_test, _, _ = split
    ae = StackedAE(
        8, hidden_layer_sizes=(64,), pretrain_max_iter=10, max_iter=50, **CPU
    ).fit(X_train)
    pca = PCA(8).fit(X_train)
    # Measured: StackedAE 330, PCA 401 (ratio 0.82) per held-out image.
    assert _error(ae, X_test) < 0.9 * _error(pca, X_test)
    assert ae.transform(X_test).shape == (len(X_test), 8)


@pytest.mark.parametrize("tied_weights", [False, True])
def test_pretraining_curves_and_a_better_start(split, tied_weights):
    X_train, _, _, _ = split
    common = dict(
        hidden_layer_sizes=(32, 16), max_iter=3, tol=0.0, learning_rate_init=1e-2,
        tied_weights=tied_weights, **CPU,
    )
    pre = StackedAE(8, pretrain_max_iter=6, **common).fit(X_train)
    cold = StackedAE(8, pretrain_max_iter=0, **common).fit(X_train)
    # One curve per layer (64 -> 32 -> 16 -> 8), pretrain_max_iter epochs each.
    assert [len(c) for c in pre.pretrain_loss_curves_] == [6, 6, 6]
    for curve in pre.pretrain_loss_curves_:
        assert curve[-1] < 0.7 * curve[0]
    assert cold.pretrain_loss_curves_ == []
    # The unrolled stack starts fine-tuning far below a random network:
    # measured first-epoch objectives 35.5 (pretrained) and 64.0 (random);
    # tied weights: 28.4 and 65.6.
    assert pre.loss_curve_[0] < 0.7 * cold.loss_curve_[0]


def test_no_pretraining_is_exactly_the_plain_autoencoder(split):
    """pretrain_max_iter=0 draws nothing extra: the same seed gives the same
    model as AutoencoderTransformer (one training path)."""
    X_train, X_test, _, _ = split
    params = dict(hidden_layer_sizes=(16,), max_iter=4, **CPU)
    stacked = StackedAE(4, pretrain_max_iter=0, **params).fit(X_train)
    plain = AutoencoderTransformer(4, **params).fit(X_train)
    assert_array_equal(stacked.transform(X_test), plain.transform(X_test))
    assert stacked.loss_curve_ == plain.loss_curve_


# ----------------------------------------------------------------------
# supervised fine-tuning
# ----------------------------------------------------------------------
def test_nca_code_beats_linear_nca_and_pca_for_nearest_neighbours(split):
    X_train, X_test, y_train, y_test = split
    ae = StackedAE(
        2, hidden_layer_sizes=(32,), fine_tune="nca", pretrain_max_iter=10,
        max_iter=30, **CPU,
    ).fit(X_train, y_train)
    nca = NeighborhoodComponentsAnalysis(2, random_state=0).fit(X_train, y_train)
    pca = PCA(2).fit(X_train)
    ours, theirs, linear = (_knn_accuracy(m, *split) for m in (ae, nca, pca))
    # Measured 1-NN accuracy in 2-D: StackedAE(nca) 0.83, NCA 0.67, PCA 0.59.
    assert ours > theirs + 0.08
    assert ours > linear + 0.15


def test_classification_code_beats_pca_for_logistic_regression(split):
    X_train, X_test, y_train, y_test = split
    ae = StackedAE(
        2, hidden_layer_sizes=(32,), fine_tune="classification",
        pretrain_max_iter=10, max_iter=30, **CPU,
    ).fit(X_train, y_train)
    clf = LogisticRegression(max_iter=2000)
    pca = PCA(2).fit(X_train)
    ours, linear = (
        clf.fit(m.transform(X_train), y_train).score(m.transform(X_test), y_test)
        for m in (ae, pca)
    )
    # Measured: 0.77 against 0.59.
    assert ours > linear + 0.1
    assert ae.module_.head.out_features == 10


@pytest.mark.parametrize("fine_tune", ["classification", "nca"])
def test_decoder_follows_the_supervised_code(split, fine_tune):
    """inverse_transform decodes the fine-tuned code, not the pretrained one;
    reconstruction_weight lets reconstruction shape the code too."""
    X_train, X_test, y_train, _ = split
    pretrained = {}

    class Snapshot(Callback):
        def on_train_begin(self, net, **kwargs):
            state = net.module_.state_dict().items()
            pretrained.update({k: v.clone() for k, v in state if "decoder" in k})

    common = dict(
        hidden_layer_sizes=(32,), fine_tune=fine_tune, pretrain_max_iter=10,
        max_iter=30, **CPU,
    )
    pure = StackedAE(2, callbacks=[Snapshot()], **common).fit(X_train, y_train)
    mixed = StackedAE(2, reconstruction_weight=1.0, **common).fit(X_train, y_train)
    stale = copy.deepcopy(pure.module_)
    stale.load_state_dict(pretrained, strict=False)
    with torch.no_grad():
        x = torch.tensor(X_test, dtype=torch.float32)
        recon = stale.denormalize(stale.decode(stale.encode(stale.normalize(x))))
    stale_error = ((X_test - recon.numpy()) ** 2).sum(1).mean()
    variance = ((X_test - X_train.mean(0)) ** 2).sum(1).mean()
    pca = _error(PCA(2).fit(X_train), X_test)
    # Measured (variance 1210, PCA-2 865): classification 874, and 805 with
    # reconstruction_weight=1; nca 872 and 766. The pretrained decoder on the
    # fine-tuned code would give 1778 (classification) and 1452 (nca).
    assert _error(pure, X_test) < 0.8 * variance
    assert _error(pure, X_test) < 1.1 * pca
    assert _error(pure, X_test) < 0.7 * stale_error
    assert _error(mixed, X_test) < 0.97 * _error(pure, X_test)


def test_string_labels_classes_and_save_load(split, tmp_path):
    X_train, X_test, y_train, _ = split
    names = np.array(list("abcdefghij"))[y_train]
    ae = StackedAE(
        2, hidden_layer_sizes=(8,), fine_tune="classification", pretrain_max_iter=2,
        max_iter=2, **CPU,
    ).fit(X_train, names)
    assert_array_equal(ae.classes_, list("abcdefghij"))
    ae.save(tmp_path / "stacked.npz")
    loaded = skae.load(tmp_path / "stacked.npz")
    assert_array_equal(loaded.transform(X_test), ae.transform(X_test))
    assert_array_equal(loaded.classes_, ae.classes_)
    assert loaded.pretrain_loss_curves_ == ae.pretrain_loss_curves_
    with pytest.raises(ValueError, match="not seen"):
        ae.set_params(warm_start=True).fit(X_train[:20], np.full(20, "z"))


@pytest.mark.parametrize("fine_tune", ["classification", "nca"])
def test_supervised_modes_need_y(digits, fine_tune):
    X, y = digits
    ae = StackedAE(fine_tune=fine_tune, **CPU)
    message = f"fine_tune='{fine_tune}' needs the class labels y"
    with pytest.raises(ValueError, match=message):
        ae.fit(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ae.fit(X[:10], np.zeros(10))
    assert not hasattr(ae, "module_")
    assert StackedAE().__sklearn_tags__().target_tags.required is False


def test_reconstruction_mode_ignores_y(split):
    X_train, X_test, y_train, _ = split
    params = dict(hidden_layer_sizes=(8,), pretrain_max_iter=2, max_iter=2, **CPU)
    a = StackedAE(2, **params).fit(X_train)
    b = StackedAE(2, **params).fit(X_train, y_train)
    assert_array_equal(a.transform(X_test), b.transform(X_test))
    assert not hasattr(b, "classes_")


def test_supervised_early_stopping_scores_the_task(split):
    X_train, _, y_train, _ = split
    ae = StackedAE(
        2, hidden_layer_sizes=(32,), fine_tune="classification", pretrain_max_iter=5,
        max_iter=15, early_stopping=True, **CPU,
    ).fit(X_train, y_train)
    # The validation score is minus the held-out cross-entropy: better than
    # chance (-log 10 = -2.30); measured -1.47 after 15 epochs.
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ > -np.log(10) + 0.5


def test_warm_start_refuses_a_new_fine_tune(split):
    X_train, _, y_train, _ = split
    ae = StackedAE(
        2, hidden_layer_sizes=(8,), pretrain_max_iter=2, max_iter=2, warm_start=True,
        **CPU,
    ).fit(X_train)
    with pytest.raises(ValueError, match="fine_tune"):
        ae.set_params(fine_tune="nca").fit(X_train, y_train)


def test_partial_fit_and_pickle_in_nca_mode(split):
    X_train, X_test, y_train, _ = split
    ae = StackedAE(
        2, hidden_layer_sizes=(8,), fine_tune="nca", pretrain_max_iter=2, **CPU
    )
    ae.partial_fit(X_train, y_train).partial_fit(X_train, y_train)
    assert ae.n_iter_ == 2
    clone = pickle.loads(pickle.dumps(ae))
    assert_array_equal(clone.transform(X_test), ae.transform(X_test))


def test_bad_noise_level(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="noise_level=1.5"):
        StackedAE(noise="masking", noise_level=1.5, **CPU).fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("fine_tune", ["classification", "nca"])
def test_supervised_modes_pass_the_estimator_checks(fine_tune):
    """test_common checks the default (unsupervised) instance; the checks
    also pass when fit uses y."""
    est = StackedAE(
        fine_tune=fine_tune, hidden_layer_sizes=(8,), pretrain_max_iter=2, max_iter=5,
        **CPU,
    )
    results = check_estimator(est, on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200])
        for r in results
        if r["status"] == "failed"
    ]
    assert failed == []
