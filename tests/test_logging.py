"""The training log (``verbose``): progress, summary, table, units."""

import io

import numpy as np
import pytest
from _helpers import fit_quietly

from skae import AutoencoderTransformer, StackedAE, VariationalAE
from skae._logging import TrainingLog

CPU = {"device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return rng.normal(size=(120, 8)) @ rng.normal(size=(8, 8))



# ----------------------------------------------------------------------
def test_verbose_one_is_a_short_progress_log_with_a_summary(X, capsys):
    fit_quietly(AutoencoderTransformer(max_iter=100, tol=0.0, verbose=1, **CPU), X)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11  # a line at each tenth of max_iter, one summary
    assert "\r" not in "".join(lines)  # no carriage returns off a tty
    assert lines[0].startswith("epoch 10/100") and "left" in lines[0]
    assert lines[-1].startswith("100 epochs in") and "max_iter=100 epochs reached" in lines[-1]


def test_verbose_two_is_a_table_whose_error_is_minus_the_score(X, capsys):
    est = fit_quietly(AutoencoderTransformer(max_iter=3, tol=0.0, verbose=2, alpha=0.0, **CPU), X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "train_error", "dur"]
    assert len(lines) == 5
    row = est._net.history[-1]
    # 'global' normalisation: the error in X's units is the loss times scale**2.
    assert row["train_error"] == pytest.approx(row["train_loss"] * est.scale_[0] ** 2, rel=1e-4)


def test_a_tty_gets_one_updating_line(X):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    log = TrainingLog(verbose=1, stream=out)
    fit_quietly(AutoencoderTransformer(max_iter=5, tol=0.0, callbacks=[log], **CPU), X)
    text = out.getvalue()
    assert text.count("\r") == 5 and text.count("\n") == 2  # bar closed, summary


def test_the_log_names_why_training_stopped(X, capsys):
    Xc = np.zeros((40, 3))  # nothing to learn: the rule stops after 11 epochs
    fit_quietly(AutoencoderTransformer(max_iter=50, verbose=1, **CPU), Xc)
    last = capsys.readouterr().out.splitlines()[-1]
    assert "did not improve by tol=0.0001 for 10 epochs" in last


def test_vae_and_stacked_logs(X, capsys):
    fit_quietly(VariationalAE(max_iter=2, verbose=2, **CPU), X)
    assert capsys.readouterr().out.splitlines()[0].split()[1:4] == [
        "train_loss", "train_rec", "train_kl",
    ]
    y = (X[:, 0] > 0).astype(int)
    fit_quietly(StackedAE(max_iter=2, pretrain_max_iter=1, hidden_layer_sizes=(4,),
                   fine_tune="nca", verbose=2, **CPU), X, y)
    out = capsys.readouterr().out
    assert "Pretraining layer 1/2: 8-4" in out and "Pretraining layer 2/2: 4-2" in out
    assert "Fine-tuning the 8-4-2 stack end to end (nca)" in out
    assert "train_task" in out.split("Fine-tuning")[1]




def test_partial_fit_prints_one_line_a_call(X, capsys):
    est = AutoencoderTransformer(verbose=1, **CPU)
    for _ in range(3):
        est.partial_fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert "train_error" in lines[-1]
