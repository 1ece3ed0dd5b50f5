"""The run folder's text records: ``train.log`` (the original project's log lines) and ``metrics.csv``."""

from __future__ import annotations

import csv
import time
from contextlib import contextmanager
from pathlib import Path

from crnn.errors import CrnnError

METRIC_FIELDS = ["epoch", "step", "elapsed_s", "lr", "train_loss", "val_accuracy", "val_accuracy_nocase",
                 "val_cer", "images_per_s"]


class RunLog:
    """Appends to ``train.log`` and ``metrics.csv``; does nothing when ``enabled`` is false (non-zero ranks).

    A write that fails (a full disk) becomes a one-line :class:`~crnn.errors.CrnnError` naming the file.
    """

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self.log_path = run_dir / "train.log"
        self.csv_path = run_dir / "metrics.csv"
        if enabled and not self.csv_path.exists():
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(METRIC_FIELDS)

    def line(self, text: str) -> None:
        if self.enabled:
            with _writing(self.log_path) as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def metrics(self, row: dict) -> None:
        if self.enabled:
            with _writing(self.csv_path) as f:
                csv.writer(f).writerow([_fmt(row.get(k)) for k in METRIC_FIELDS])


@contextmanager
def _writing(path: Path):
    try:
        with open(path, "a", encoding="utf-8", newline="") as f:
            yield f
    except OSError as e:
        raise CrnnError(f"{path}: cannot write ({e.strerror or e}); last.pt and best.pt are unaffected") from None


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def read_metrics(path: Path) -> list[dict]:
    """Rows of a ``metrics.csv`` with numbers parsed (empty cells become ``None``)."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return rows
