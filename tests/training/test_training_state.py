"""crnn.training.state (bad-step counting in the loop): non-finite losses skipped and counted, or a clear stop."""

from __future__ import annotations

import pytest
import torch

from conftest import ARGS, EPOCHS, SETTINGS
from crnn.checkpoint import load_checkpoint
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.training.loop import train
from crnn.training.state import TrainResult, TrainState

STEPS_PER_EPOCH = 3  # 40 samples in batches of 16


pytestmark = pytest.mark.usefixtures("no_curves")  # no curves.png drawn (see conftest.py)


def test_occasional_non_finite_losses_are_skipped_and_counted(data, tmp_path, monkeypatch):
    real_ctc = torch.nn.functional.ctc_loss
    calls = {"n": 0}

    def sometimes_nan(*args, **kwargs):
        calls["n"] += 1
        loss = real_ctc(*args, **kwargs)
        return loss * float("nan") if calls["n"] in (2, 5, 6) else loss

    monkeypatch.setattr(torch.nn.functional, "ctc_loss", sometimes_nan)
    cfg = apply_overrides(Config(), SETTINGS + [f"train.epochs={EPOCHS}", "train.max_bad_steps=3"])
    res = train(cfg, data, tmp_path / "run", progress=False, log=lambda *a: None)
    assert res.epochs == EPOCHS and res.steps == EPOCHS * STEPS_PER_EPOCH - 3  # the bad steps were not taken
    ckpt = load_checkpoint(res.last_path)
    assert ckpt["train_state"]["bad_total"] == 3
    weights = ckpt["train_state"]["raw_model"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert all(row["train_loss"] == row["train_loss"] for row in res.history)  # no NaN in the averages


def test_persistent_non_finite_losses_stop_with_a_clear_message(data, tmp_path, capsys):
    argv = ["train", "--train", str(data), "--out", str(tmp_path / "run"), *ARGS, "--lr", "1e30",
            "--set", "train.max_bad_steps=4"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: training diverged: 4 consecutive non-finite losses (try a lower train.lr")


def test_best_keeps_the_later_epoch_within_the_validation_noise():
    """480 validation characters: the lowest CER 9/480; two standard errors of it are ~6 characters, so a
    later epoch 5 characters worse replaces best.pt, and one 8 worse does not."""
    ts = TrainState()
    assert ts.take_best(1.0, 0.0, 480)  # on the plateau: still the best so far
    assert ts.take_best(20 / 480, 0.6, 480)
    assert ts.take_best(9 / 480, 0.9, 480) and ts.best_cer == 9 / 480
    assert ts.take_best(14 / 480, 0.86, 480) and (ts.best_cer, ts.best_acc) == (14 / 480, 0.86)
    assert ts.low_cer == 9 / 480  # measured against the lowest, so small steps cannot drift it upwards
    assert not ts.take_best(17 / 480, 0.84, 480) and ts.best_cer == 14 / 480
    # a perfect epoch leaves room for about two characters of noise, not for none
    ts = TrainState()
    assert ts.take_best(0.0, 1.0, 400) and ts.take_best(1 / 400, 0.99, 400)
    assert not ts.take_best(4 / 400, 0.97, 400)
    # a run saved before low_cer existed resumes with its best CER as the lowest
    assert TrainState.from_dict({"best_cer": 0.05, "best_acc": 0.7}).low_cer == 0.05


def test_the_closing_line_says_when_best_pt_comes_from_the_epoch_the_budget_cut_short(tmp_path):
    def result(epochs: int, best_epoch: int) -> TrainResult:
        return TrainResult(tmp_path, tmp_path / "best.pt", tmp_path / "last.pt", 0.9, 0.02, epochs, 400, 600.0,
                           150.0, best_epoch=best_epoch, best_step=390, passes=epochs + 0.4)
    cut, whole = result(3, 4).summary, result(3, 3).summary
    assert "from epoch 4 (the last, cut short by the time budget) at step 390" in cut
    assert "trained 3.40 epochs, 400 steps, 600 s at 150 images/s" in cut
    assert "from epoch 3 at step 390;" in whole and "cut short" not in whole
