"""Run folders: work already done is never lost (issue 13), through ``crnn train`` itself.

A folder that holds a model is written into only with ``--resume`` or ``--force`` (old files moved
aside), one process holds a run folder at a time (an flock the kernel drops when the process dies),
and ``--resume`` refuses other data or other settings, naming the difference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import RAN, make_toy_set
from crnn.cli import main

TINY = ["--set", "data.height=32", "--set", "model.rnn_hidden=16", "--set", "train.batch_size=16",
        "--set", "augment.enabled=false", "--set", "train.log_every=1000", "--set", "train.ema=0",
        "--epochs", "1", "--no-progress"]


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error: ") or "Traceback" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs-data")
    make_toy_set(root / "a", 40, seed=1)
    make_toy_set(root / "b", 48, seed=2)
    return {"a": root / "a", "b": root / "b"}


def _train(data_dir: Path, out: Path, *extra: str) -> int:
    return main(["train", "--train", str(data_dir), "--out", str(out), *TINY, *extra])


def test_a_folder_with_only_best_pt_is_never_overwritten(data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"the 98 % model")
    (run / "train.log").write_text("the old run's log\n")
    assert _train(data["a"], run) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(run) in err and "already holds a run (best.pt, train.log)" in err and "--force" in err
    assert (run / "best.pt").read_bytes() == b"the 98 % model"
    assert (run / "train.log").read_text() == "the old run's log\n"
    assert not (run / "metrics.csv").exists() and not (run / "last.pt").exists()


def test_force_moves_the_old_run_aside_then_trains(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(data["a"], run) in RAN
    first_best = (run / "best.pt").read_bytes()
    first_log = (run / "train.log").read_text()
    assert _train(data["a"], run, "--force") in RAN
    out = capsys.readouterr().out
    old = [p for p in run.iterdir() if p.name.startswith("old-")]
    assert len(old) == 1 and f"moved to {old[0]}" in out
    assert (old[0] / "best.pt").read_bytes() == first_best  # kept, byte for byte
    assert (old[0] / "train.log").read_text() == first_log
    assert (old[0] / "last.pt").exists() and (old[0] / "metrics.csv").exists()
    assert (run / "best.pt").exists() and (run / "train.log").read_text().count("start:") == 1
    # a third --force keeps both earlier runs
    assert _train(data["a"], run, "--force") in RAN
    olds = sorted(p for p in run.iterdir() if p.name.startswith("old-"))
    assert len(olds) == 2 and all((p / "best.pt").exists() for p in olds)


def test_a_failed_start_leaves_no_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(tmp_path / "no-such-data", run) == 2
    assert not run.exists()


_HOLDER = """
import sys, time
from crnn.training.runfolder import RunFolder
with RunFolder(sys.argv[1], resume=False, force=False) as f:
    f.start_writing()
    print("holding", flush=True)
    time.sleep(120)
"""


def test_one_process_per_run_folder_and_a_killed_one_leaves_no_lock(data, tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.monotonic()
        assert _train(data["a"], run) == 2
        err = one_error_line(capsys.readouterr().err)
        assert f"another crnn train (pid {holder.pid}) is writing into this run folder" in err
        assert time.monotonic() - t0 < 10  # at once, not after loading the data
        assert list(run.iterdir()) == [run / ".lock"]  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert _train(data["a"], run) in RAN  # the kernel dropped the dead process's lock
    assert (run / "best.pt").exists()


def test_resume_refuses_other_data_and_other_settings(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(data["a"], run) in RAN
    capsys.readouterr()
    last = (run / "last.pt").read_bytes()
    assert _train(data["b"], run, "--resume", "--epochs", "2") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "--resume: the training data differ from the run's" in err
    assert "40 samples" in err and "48 samples" in err
    assert main(["train", "--train", str(data["a"]), "--val", str(data["b"]), "--out", str(run), *TINY,
                 "--resume"]) == 2
    assert "the validation data differ" in one_error_line(capsys.readouterr().err)
    assert _train(data["a"], run, "--resume", "--set", "model.rnn_hidden=32") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "--resume: model.rnn_hidden=32 differs from the run's 16" in err
    assert main(["train", "--train", str(data["a"]), "--out", str(run), *TINY, "--resume", "--lr", "0.1"]) == 2
    assert "train.lr=0.1 differs" in one_error_line(capsys.readouterr().err)
    assert (run / "last.pt").read_bytes() == last  # every refusal left the run as it was
    # the same data, more epochs: allowed, as before
    assert main(["train", "--train", str(data["a"]), "--out", str(run), *TINY[:-3], "--epochs", "2",
                 "--no-progress", "--resume"]) in RAN
    assert "resuming" in capsys.readouterr().out


def test_resume_notices_a_changed_file_in_the_data(data, tmp_path, capsys):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data["a"], copy)
    run = tmp_path / "run"
    assert _train(copy, run) in RAN
    first = sorted(copy.glob("*.png"))[0]
    first.write_bytes(first.read_bytes() + b"\0" * 10)  # same count, other bytes
    assert _train(copy, run, "--resume", "--epochs", "2") == 2
    assert "the training data differ" in one_error_line(capsys.readouterr().err)
    os.truncate(first, first.stat().st_size - 10)
    assert _train(copy, run, "--resume", "--epochs", "2") in RAN


def test_a_folder_with_only_logs_starts_again_and_keeps_them(data, tmp_path, capsys):
    """A run killed before it saved any model leaves logs only: nothing to resume, so it starts again."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text("a run killed in its first steps\n")
    (run / "metrics.csv").write_text("epoch\n")
    assert _train(data["a"], run) in RAN
    out = capsys.readouterr().out
    old = [p for p in run.iterdir() if p.name.startswith("old-")]
    assert len(old) == 1 and "saved no model" in out and str(old[0]) in out
    assert (old[0] / "train.log").read_text() == "a run killed in its first steps\n"
    assert (run / "best.pt").exists() and (run / "last.pt").exists()


def test_a_resume_writes_a_missing_best_pt_from_last_pt(data, tmp_path):
    """Killed between last.pt and best.pt of an improving epoch (last.pt is written first): the resume
    writes best.pt from last.pt's weights, the best so far."""
    from crnn.checkpoint import load_checkpoint

    run = tmp_path / "run"
    assert _train(data["a"], run) in RAN
    (run / "best.pt").unlink()
    assert _train(data["a"], run, "--resume", "--epochs", "2") in RAN
    assert load_checkpoint(run / "best.pt")["meta"]["kind"] == "best"
    assert "best.pt was missing; written from" in (run / "train.log").read_text()


def test_a_resume_removes_what_a_killed_writer_left_and_keeps_what_a_live_one_holds(data, tmp_path):
    """A kill during ``best.pt``'s write leaves ``.best.pt.*.tmp``; ``atomic_write`` only sweeps it when it writes
    ``best.pt`` again, which a resume may never do. The run folder sweeps its own temporary files before it
    writes, except one that a live process holds locked."""
    import fcntl

    run = tmp_path / "run"
    assert _train(data["a"], run) in RAN
    # named for a file this resume does not write again (a stale .best.pt.*.tmp is also swept whenever the
    # resume happens to write a better best.pt, so that name alone would not show the folder's own sweep)
    stale = run / ".model.pt.killed.tmp"
    stale.write_bytes(b"half a checkpoint")
    held = run / ".notes.txt.live.tmp"
    held.write_bytes(b"being written")
    fd = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert _train(data["a"], run, "--resume", "--epochs", "2") in RAN
        assert not stale.exists()
        assert held.exists()
    finally:
        os.close(fd)
