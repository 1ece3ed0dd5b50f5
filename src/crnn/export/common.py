"""What both exporters share: the result type, where the file goes, and writing it only once checked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crnn.fileio import atomic_write
from crnn.inference.pytorch import Recognizer


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    size_bytes: int
    max_abs_diff: float | None
    """Largest log-prob difference between the exported model and PyTorch on the check batch (None: unchecked)."""


def as_recognizer(model: str | os.PathLike | Recognizer) -> Recognizer:
    """A PyTorch recognizer (exports trace the PyTorch model, so no fast path is started)."""
    return model if isinstance(model, Recognizer) else Recognizer.load(model, runtime="torch")


def default_out(model: str | os.PathLike | Recognizer, suffix: str) -> Path:
    name = str(model.name if isinstance(model, Recognizer) else model)
    if name.startswith("builtin:"):
        return Path(name.split(":", 1)[1] + suffix)
    return Path(name).with_suffix(suffix)


def write_checked(out: Path, write) -> None:
    """``write(tmp_path)`` (which writes and checks the file), then rename into place: a failed check leaves
    whatever was at ``out`` before untouched."""
    atomic_write(out, write_path=write)
