"""Fine-tune in the loop: train on the labels so far, in the background, then pre-fill with the new model.

Each run is one call to :func:`crnn.training.loop.train` with ``init=`` the model that
pre-fills now (so runs build on each other), a short time budget, and the session's
output folder as the training data; it goes into ``OUT/.crnn-label/runs/NNN`` (a hidden
folder, so the data readers never take its ``curves.png`` for a sample). Training runs
in a thread: PyTorch releases the GIL in its kernels, so the page stays responsive, and
``train`` leaves signal handling to the main thread there.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from crnn.label.store import STATE_DIR


class Retrainer:
    """One background fine-tune at a time for a :class:`~crnn.label.session.LabelSession`."""

    def __init__(self, session):
        self.session = session
        self.thread: threading.Thread | None = None
        self.runs = 0
        self.state = "idle"
        self.message = ""
        self.started = 0.0
        self.last_run: Path | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def status(self) -> dict:
        return {"state": self.state, "runs": self.runs, "message": self.message,
                "every": self.session.settings.retrain_every,
                "elapsed_s": round(time.monotonic() - self.started, 1) if self.state == "running" else None}

    def start(self) -> None:
        self.state, self.message, self.started = "running", "fine-tuning on the labels so far", time.monotonic()
        self.thread = threading.Thread(target=self._run, name="crnn-label-retrain", daemon=True)
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        from crnn import Recognizer
        from crnn.config import Config, apply_overrides
        from crnn.training.loop import train

        s = self.session
        store = s.store
        runs_dir = store.out / STATE_DIR / "runs"
        n = 1 + max((int(p.name) for p in runs_dir.glob("[0-9][0-9][0-9]") if p.is_dir()), default=0)
        run = runs_dir / f"{n:03d}"
        try:
            data, pattern = store.data_location()
            cfg = apply_overrides(Config(), list(s.settings.retrain_set))
            cfg.train.time_budget = s.settings.retrain_budget_s
            cfg.data.label_pattern = pattern
            labelled = len(store.entries)
            result = train(cfg, data, run, init=s.model_path, progress=False, log=lambda *a: None)
            rec = Recognizer.load(result.best_path)
            s.swap_model(rec, f"fine-tune {n} ({labelled} labels)", str(result.best_path))
            self.runs += 1
            self.last_run = run
            self.state = "done"
            self.message = (f"fine-tune {n} on {labelled} labels: validation accuracy {result.best_accuracy:.0%} "
                            f"after {result.elapsed:.0f} s; the pre-fill now uses it")
        except Exception as e:  # noqa: BLE001 - shown on the page; the session goes on with the old model
            self.state = "failed"
            self.message = f"fine-tune {n} failed: {e}"
        with s.lock:
            s.version += 1


__all__ = ["Retrainer"]
