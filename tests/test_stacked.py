"""StackedAE: greedy pretraining, fine-tuning, and the supervised modes (issue 6)."""

import copy
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.utils.estimator_checks import check_estimator
from skorch.callbacks import Callback

import skae
from skae import AutoencoderTransformer, StackedAE
from skae._losses import nca_loss

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


def _record_stages(monkeypatch):
    """Record ``(net, data)`` of every pretraining stage's training run."""
    from skae import _pretraining, _training

    stages, train = [], _training.train

    def recording_train(net, data, **kw):
        if isinstance(net.objective, _pretraining.StageObjective):
            stages.append((net, data))
        return train(net, data, **kw)

    monkeypatch.setattr(_training, "train", recording_train)
    return stages


def test_unrolled_network_holds_the_pretrained_weights(split, monkeypatch):
    """Encoder layer k is stage k's encoder; decoder layers are the stages'
    decoders in reverse order; each stage trains on the codes below it."""
    X_train, _, _, _ = split
    initial = {}
    stages = _record_stages(monkeypatch)

    class Snapshot(Callback):
        def on_train_begin(self, net, **kwargs):
            initial.update({k: v.clone() for k, v in net.module_.state_dict().items()})

    ae = StackedAE(
        4, hidden_layer_sizes=(16, 8), pretrain_max_iter=3, max_iter=1,
        callbacks=[Snapshot()], **CPU,
    ).fit(X_train)
    assert [net.module_.code.out_features for net, _ in stages] == [16, 8, 4]
    assert [data.X.shape[1] for _, data in stages] == [64, 16, 8]
    # Stage 1 sees the estimator's normalised data; stage k+1 stage k's codes.
    normalised = (X_train - ae.mean_) / ae.scale_
    assert_allclose(stages[0][1].X.numpy(), normalised, rtol=1e-5, atol=1e-5)
    for (below, data_below), (_, data) in zip(stages[:-1], stages[1:]):
        with torch.no_grad():
            assert_array_equal(data.X.numpy(), below.module_.encode(data_below.X).numpy())
    decoders = ["decoder.4", "decoder.2", "decoder.0"]  # 16->64, 8->16, 4->8
    encoders = ["encoder.0", "encoder.2", "code"]
    for (net, _), enc, dec in zip(stages, encoders, decoders):
        stage = net.module_.state_dict()
        for name in ("weight", "bias"):
            assert_array_equal(initial[f"{enc}.{name}"], stage[f"code.{name}"])
            assert_array_equal(initial[f"{dec}.{name}"], stage[f"decoder.0.{name}"])


def test_early_stopping_holds_its_validation_rows_out_of_pretraining(split, monkeypatch):
    """The validation rows that early stopping scores are never trained on,
    not even by the greedy pretraining that precedes the fine-tuning."""
    from skae import _batches

    X_train, _, _, _ = split
    X = X_train[:300].astype(np.float32)
    stages = _record_stages(monkeypatch)
    trained_rows = []
    iterate = _batches.BatchIterator.__iter__

    def recording_iter(self):
        for batch in iterate(self):
            if self.shuffle:  # training batches (validation is not shuffled)
                trained_rows.append({tuple(r) for r in batch[0].tolist()})
            yield batch

    monkeypatch.setattr(_batches.BatchIterator, "__iter__", recording_iter)
    est = StackedAE(
        4, hidden_layer_sizes=(16,), early_stopping=True, validation_fraction=0.2,
        pretrain_max_iter=2, max_iter=3, random_state=0, device="cpu",
    ).fit(X)
    assert len(stages) == 2
    train_rows, valid_rows = stages[0][1].train_rows.numpy(), stages[0][1].valid_rows.numpy()
    assert len(valid_rows) == 60 and len(set(train_rows) | set(valid_rows)) == 300
    for _, data in stages:  # every stage: the fine-tuning's split
        assert_array_equal(data.train_rows.numpy(), train_rows)
        assert_array_equal(data.valid_rows.numpy(), valid_rows)
    X_norm = ((torch.from_numpy(X) - torch.tensor(est.mean_, dtype=torch.float32))
              / torch.tensor(est.scale_, dtype=torch.float32)).numpy()
    # The first stage's training batches hold only the training rows.
    first = stages[0][1].X.numpy()
    assert_array_equal(first, X_norm)
    held_out = {tuple(r) for r in first[valid_rows].tolist()}
    n_first = 2 * -(-len(train_rows) // est.batch_size_)  # 2 epochs of batches
    seen = set().union(*trained_rows[:n_first])
    assert seen == {tuple(r) for r in first[train_rows].tolist()}
    assert not (seen & held_out)


def test_no_pretraining_is_exactly_the_plain_autoencoder(split):
    """pretrain_max_iter=0 draws nothing extra: the same seed gives the same
    model as AutoencoderTransformer (one training path)."""
    X_train, X_test, _, _ = split
    params = dict(hidden_layer_sizes=(16,), max_iter=4, **CPU)
    stacked = StackedAE(4, pretrain_max_iter=0, **params).fit(X_train)
    plain = AutoencoderTransformer(4, **params).fit(X_train)
    assert_array_equal(stacked.transform(X_test), plain.transform(X_test))
    assert stacked.loss_curve_ == plain.loss_curve_


def test_denoising_layers(split, monkeypatch):
    X_train, X_test, _, _ = split
    common = dict(
        hidden_layer_sizes=(32,), pretrain_max_iter=8, max_iter=2, tol=0.0, **CPU
    )
    clean = StackedAE(8, **common).fit(X_train)
    recorded = _record_stages(monkeypatch)
    masked = StackedAE(8, noise="masking", noise_level=0.3, **common).fit(X_train)
    # Rebuilding what the noise destroyed is harder: measured last-epoch
    # losses of the first layer 54.4 (clean) and 65.5 (30% masked).
    first_layer = [m.pretrain_loss_curves_[0][-1] for m in (clean, masked)]
    assert first_layer[1] > 1.1 * first_layer[0]
    # Every stage is denoising; the first masks entries to 0 in the units
    # of X (a missing pixel), as DenoisingAE does, not to 0 after scaling.
    stages = [net.objective for net, _ in recorded]
    assert [(s.noise, s.noise_level) for s in stages] == [("masking", 0.3)] * 2
    torch.manual_seed(0)
    x = torch.tensor((X_train[:50] - masked.mean_) / masked.scale_, dtype=torch.float32)
    corrupted = stages[0]._corrupt(x).numpy() * masked.scale_ + masked.mean_
    hit = ~np.isclose(corrupted, X_train[:50], atol=1e-4)
    assert 0.25 < hit[X_train[:50] != 0].mean() < 0.35  # of the nonzero pixels
    assert_allclose(corrupted[hit], 0.0, atol=1e-4)
    again = StackedAE(8, noise="masking", noise_level=0.3, **common).fit(X_train)
    assert_array_equal(masked.transform(X_test), again.transform(X_test))


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


# ----------------------------------------------------------------------
# the batch NCA loss
# ----------------------------------------------------------------------
def test_nca_loss_matches_brute_force(rng):
    z = rng.normal(size=(7, 3))
    y = np.array([0, 1, 0, 2, 1, 0, 2])
    expected = np.empty(len(z))
    for i in range(len(z)):
        d = ((z - z[i]) ** 2).sum(1)
        w = np.exp(-d)
        w[i] = 0.0
        p = w / w.sum()
        expected[i] = 1.0 - p[y == y[i]].sum()
    got = nca_loss(torch.tensor(z), torch.tensor(y))
    assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_nca_loss_single_sample_and_gradient():
    z = torch.zeros(1, 2, requires_grad=True)
    loss = nca_loss(z, torch.tensor([3]))
    loss.sum().backward()
    assert float(loss.detach()) == 1.0
    assert_array_equal(z.grad.numpy(), 0.0)
    # Same-class points are pulled together: the gradient on z_0 points to z_1.
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    nca_loss(z, torch.tensor([0, 0, 1])).mean().backward()
    assert z.grad[0, 0] < 0


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


def test_interrupt_during_pretraining_stops_the_whole_fit(monkeypatch):
    """Ctrl-C in a pretraining stage aborts fit and leaves the estimator as it was."""
    from sklearn.datasets import load_digits

    from skae import _pretraining

    X, _ = load_digits(return_X_y=True)
    calls = {"n": 0}
    original = _pretraining.StageObjective._corrupt

    def interrupt_in_second_layer(self, x):
        if x.shape[1] == 16:  # the second stage's input width
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, x)

    monkeypatch.setattr(_pretraining.StageObjective, "_corrupt", interrupt_in_second_layer)
    est = StackedAE(4, hidden_layer_sizes=(16,), pretrain_max_iter=2, max_iter=2,
                    random_state=0, device="cpu")
    with pytest.warns(UserWarning, match="interrupted"), pytest.raises(KeyboardInterrupt):
        est.fit(X[:200])
    assert calls["n"] > 0  # the first stage did train
    assert not hasattr(est, "module_") and not hasattr(est, "pretrain_loss_curves_")
