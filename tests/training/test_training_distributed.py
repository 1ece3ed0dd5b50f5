"""DDP training with two CPU processes (gloo) through ``crnn train --nproc 2`` (torchrun underneath)."""

import os
import subprocess
import sys

import pytest

from crnn.checkpoint import load_checkpoint
from crnn.training.runlog import read_metrics

ARGS = ["--set", "data.height=32", "--set", "model.rnn_hidden=64", "--set", "train.batch_size=16", "--no-progress"]


def _crnn(*argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "crnn", *argv], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_two_processes_match_single_process_quality_and_resume(toy_data, tmp_path):
    run = tmp_path / "ddp"
    p = _crnn("train", "--nproc", "2", "--train", str(toy_data / "train"), "--val", str(toy_data / "test"),
              "--out", str(run), "--epochs", "8", *ARGS)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("best model: validation CER") == 1  # only rank 0 reports
    log = (run / "train.log").read_text()
    assert log.count("start epoch 1/8") == 1  # only rank 0 writes logs
    rows = read_metrics(run / "metrics.csv")
    assert len(rows) == 8
    # same global batch as a single process: 240 samples / 16 -> 15 steps per epoch
    assert rows[-1]["step"] == 8 * 15
    assert max(r["val_accuracy"] for r in rows) >= 0.85  # a single process reaches >= 0.9 in the same setting
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["meta"]["epoch"] == 8
    # resume the distributed run for two more epochs
    p = _crnn("train", "--nproc", "2", "--train", str(toy_data / "train"), "--val", str(toy_data / "test"),
              "--out", str(run), "--epochs", "10", "--resume", *ARGS)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(read_metrics(run / "metrics.csv")) == 10
