"""crnn.training.stopflag (with resume): real training processes killed at random moments resume to the same weights."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from test_training_state import STEPS_PER_EPOCH

from conftest import ARGS, EPOCHS, RAN
from crnn.checkpoint import load_checkpoint
from crnn.cli import EXIT_INTERRUPTED, main
from crnn.training.runlog import read_metrics

pytestmark = pytest.mark.usefixtures("no_curves")  # no curves.png drawn (see conftest.py)


@pytest.fixture(scope="module")
def child_env(tmp_path_factory) -> dict:
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> dict:
    """An uninterrupted run: what every interrupted-and-resumed run must end up with, bit for bit."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", "--train", str(data), "--out", str(out), *ARGS]) in RAN
    return load_checkpoint(out / "last.pt")["train_state"]["raw_model"]


def _steps_logged(run: Path) -> int:
    try:
        return (run / "train.log").read_text(encoding="utf-8").count(" iter ")
    except FileNotFoundError:
        return 0


def _interrupt(env: dict, data: Path, run: Path, sig: int, at_step: int, jitter: float) -> tuple[int, str, float]:
    """Start a real training process; send ``sig`` once ``at_step`` steps are logged plus ``jitter`` seconds."""
    cmd = [sys.executable, "-m", "crnn", "train", "--train", str(data), "--out", str(run), *ARGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _steps_logged(run) < at_step and proc.poll() is None:
        assert time.monotonic() < deadline, "training process made no progress"
        time.sleep(0.01)
    time.sleep(jitter)
    sent_at = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode(errors="replace"), time.monotonic() - sent_at


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_kill_at_random_moments_then_resume(data, reference, child_env, tmp_path):
    """SIGKILL (4 trials), SIGINT and SIGTERM at seeded random steps; each run resumes to the same weights.

    The training processes run two at a time (each pays torch's import); the resumes run here, one by one.
    """
    rng = random.Random(20240611)
    total = EPOCHS * STEPS_PER_EPOCH
    trials = [(signal.SIGKILL, rng.randint(1, total - 1), rng.uniform(0.0, 0.4)) for _ in range(4)]
    trials += [(signal.SIGINT, rng.randint(2, total - 2), rng.uniform(0.0, 0.2)),
               (signal.SIGTERM, rng.randint(2, total - 2), rng.uniform(0.0, 0.2))]
    runs = [tmp_path / f"trial{n}" for n in range(len(trials))]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda t: _interrupt(child_env, data, *t), [(r, *tr) for r, tr in zip(runs, trials)]))
    outcomes = []
    for run, (sig, at_step, _), (rc, err, _) in zip(runs, trials, results):
        last = run / "last.pt"
        litter = len(list(run.glob(".*.tmp")))
        if rc in RAN:  # finished before the signal landed (3: it ended without learning, as a toy run may)
            outcomes.append((sig.name, at_step, "finished first", 0))
            continue
        assert rc != -signal.SIGINT, err  # the CLI never dies of a Ctrl-C, even one that lands as it exits
        if sig != signal.SIGKILL and last.exists() and load_checkpoint(last)["train_state"]["step"] == total:
            # Training had finished; the signal landed while the CLI printed its summary: it says so and
            # exits 130, and the run is complete (resuming it has nothing left to do).
            assert rc == EXIT_INTERRUPTED and "Traceback" not in err and not litter, err
            outcomes.append((sig.name, at_step, "finished first", 0))
            continue
        if sig == signal.SIGKILL:
            assert rc == -signal.SIGKILL, err
        else:  # Ctrl-C and SIGTERM: last.pt saved, status 130, and the way to resume is printed
            assert rc == EXIT_INTERRUPTED, err
            assert "interrupted: saved" in err and "--resume" in err and "Traceback" not in err
            assert last.exists() and not litter
        saved_step = None
        if last.exists():
            ckpt = load_checkpoint(last)  # never torn: the old or the new file, complete
            saved_step = ckpt["train_state"]["step"]
            argv = ["train", "--train", str(data), "--out", str(run), "--resume", *ARGS]
        else:  # killed before the first checkpoint: starting again in the same folder must work
            argv = ["train", "--train", str(data), "--out", str(run), *ARGS]
        assert main(argv) in RAN, (sig.name, at_step)
        final = load_checkpoint(last)
        assert final["train_state"]["epoch"] == EPOCHS and final["train_state"]["step"] == total
        assert load_checkpoint(run / "best.pt")["meta"]["kind"] == "best"
        _assert_same_weights(final["train_state"]["raw_model"], reference)
        assert len(read_metrics(run / "metrics.csv")) >= EPOCHS
        assert not list(run.glob(".*.tmp"))  # a temporary file left by the kill is gone after the next save
        outcomes.append((sig.name, at_step, f"resumed from step {saved_step}", litter))
    print("\nkill trials (signal, at step, outcome, temp files left by the kill):", *outcomes, sep="\n  ")
    assert sum(o[2] != "finished first" for o in outcomes) >= 4, outcomes
