"""crnn.training.curves: ``curves.png`` from a run's ``metrics.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crnn.errors import DataError
from crnn.training import curves
from crnn.training.runlog import METRIC_FIELDS


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, METRIC_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in METRIC_FIELDS})
    return path


def _blue_pixels(path: Path) -> int:
    """Pixels of matplotlib's first colour (C0, the loss curve)."""
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(a - np.array([31, 119, 180])).sum(axis=2) < 40).sum())


def test_training_writes_curves(run):
    assert (run.run_dir / "curves.png").is_file() and not (run.run_dir / "curves.error.txt").exists()
    assert _blue_pixels(run.run_dir / "curves.png") > 200


def test_curves_one_row_many_rows_and_gaps(run, tmp_path):
    one = _write_csv(tmp_path / "one.csv", [{"epoch": 1, "step": 10, "elapsed_s": 3.5, "lr": 0.001,
                                             "train_loss": 2.5, "val_accuracy": 0.1, "val_cer": 0.8}])
    out = curves.plot_curves(one, tmp_path / "one.png")
    img = Image.open(out)
    assert out == tmp_path / "one.png" and img.size == (1100, 700)
    assert _blue_pixels(out) > 10  # the single loss point is drawn
    many = curves.plot_curves(run.run_dir / "metrics.csv", tmp_path / "many.png")
    assert _blue_pixels(many) > _blue_pixels(out)
    gaps = _write_csv(tmp_path / "gaps.csv", [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "step": 20, "lr": 0.001},
                                              {"epoch": 3, "train_loss": 1.0, "val_accuracy": 0.5}])
    assert Image.open(curves.plot_curves(gaps, tmp_path / "gaps.png")).size == (1100, 700)
    header_only = _write_csv(tmp_path / "empty.csv", [])
    assert Image.open(curves.plot_curves(header_only, tmp_path / "empty.png")).size == (1100, 700)
    with pytest.raises(DataError, match="not found"):
        curves.plot_curves(tmp_path / "nope.csv", tmp_path / "nope.png")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
