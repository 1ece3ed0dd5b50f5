"""DDP training with two CPU processes (gloo) through ``crnn train --nproc 2`` (torchrun underneath)."""

import os
import signal
import subprocess
import sys
import time

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


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_on_two_processes_saves_and_resumes(sig, toy_data, tmp_path):
    """A Ctrl-C in the terminal (SIGINT to crnn's process group) or a SIGTERM to crnn: each worker finishes its
    step and saves; crnn exits 130 with one line saying how to resume, no traceback, no worker left running."""
    run = tmp_path / "ddp"
    argv = ["train", "--nproc", "2", "--train", str(toy_data / "train"), "--val", str(toy_data / "test"),
            "--out", str(run), "--epochs", "200", "--set", "train.log_every=1", *ARGS]
    proc = subprocess.Popen([sys.executable, "-m", "crnn", *argv], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    log = run / "train.log"
    while not (log.exists() and log.read_text().count(" iter ") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.1)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what the terminal does on Ctrl-C
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "ChildFailedError" not in err, err[-3000:]
    assert err.count("interrupted: saved") == 1 and "--resume" in err, err[-3000:]  # rank 0 says it, once
    saved = load_checkpoint(run / "last.pt")["train_state"]["step"]
    assert 3 <= saved < 200 * 15
    workers = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True).stdout.split()
    assert not workers, workers  # every worker has exited
    p = _crnn("train", "--nproc", "2", "--train", str(toy_data / "train"), "--val", str(toy_data / "test"),
              "--out", str(run), "--epochs", str(saved // 15 + 2), "--resume", *ARGS)
    assert p.returncode == 0, p.stderr[-2000:]
    assert load_checkpoint(run / "last.pt")["train_state"]["step"] == (saved // 15 + 2) * 15


def test_a_worker_status_is_crnns_status(toy_data, tmp_path):
    """Bad input under --nproc: the worker's one-line error and status 2, not torchrun's status 1 and report."""
    p = _crnn("train", "--nproc", "2", "--train", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), *ARGS)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "ChildFailedError" not in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.count("error: ") == 1 and "missing" in p.stderr, p.stderr[-2000:]  # once, not once per rank
    assert "OMP_NUM_THREADS" not in p.stderr  # torchrun's banner


def test_two_workers_error_line_is_printed_once_without_the_threads_banner(tmp_path):
    """The user's shell has no OMP_NUM_THREADS: torchrun's four-line banner about it is not printed, and the
    error both workers meet reaches the terminal once."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = -1\n", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "crnn", "train", "--nproc", "2", "--train", str(tmp_path),
                        "--config", str(bad), "--out", str(tmp_path / "run")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 2, p.stderr[-2000:]
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "train.lr" in lines[0], p.stderr[-2000:]
