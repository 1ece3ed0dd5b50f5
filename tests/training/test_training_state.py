"""crnn.training.state (bad-step counting in the loop): non-finite losses skipped and counted, or a clear stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_toy_set
from crnn.checkpoint import load_checkpoint
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.training.loop import train

EPOCHS = 3

SETTINGS = ["data.height=32",
            "model.rnn_hidden=32", "train.batch_size=16", "train.checkpoint_every=0.5", "train.log_every=1",
            "data.val_fraction=0"]

ARGS = [a for s in SETTINGS for a in ("--set", s)] + ["--epochs", str(EPOCHS), "--no-progress"]

STEPS_PER_EPOCH = 3  # 40 samples in batches of 16


# Drawing ``curves.png`` after each epoch costs seconds with matplotlib on a busy machine and is not what these
# tests are about, so it is switched off: here by stubbing ``_write_curves``, in child processes by hiding
# matplotlib (the loop then records the failure in ``curves.error.txt`` and carries on).
@pytest.fixture(scope="module", autouse=True)
def _no_curves():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("crnn.training.loop._write_curves", lambda run: None)
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faults") / "data"
    make_toy_set(d, 40, seed=11)
    return d


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
