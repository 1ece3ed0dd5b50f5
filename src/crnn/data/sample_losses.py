"""Each training sample's CTC-loss history: ``RUN/sample_losses.tsv``, written by training, read by ``crnn audit``.

One line per real (non-synthetic) training sample, after a header line::

    name<TAB>label<TAB>mean per-character CTC loss over the run (nats)<TAB>times seen

Wrong labels are learned last, so their mean training loss stays high even after the model has memorised
them (the "small-loss" / area-under-the-margin observation); the audit ranks by it. Tabs, newlines and
backslashes inside a name or label are written as ``\\t``, ``\\n``, ``\\r``, ``\\\\``. Torch-free.

>>> write_sample_losses("runs/exp1/sample_losses.tsv", ["a.png"], ["AB"], [1.5], [3])   # doctest: +SKIP
>>> read_sample_losses("runs/exp1/sample_losses.tsv")["a.png"]                           # doctest: +SKIP
SampleLoss(label='AB', mean=0.5, seen=3)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crnn.errors import CrnnError
from crnn.fileio import atomic_write

FILE_NAME = "sample_losses.tsv"
HEADER = "name\tlabel\tmean_char_loss\tseen"
_ESC = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESC = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


@dataclass(frozen=True)
class SampleLoss:
    label: str
    mean: float
    """Mean per-character CTC loss (nats) over every training step that saw the sample."""
    seen: int


def _escape(s: str) -> str:
    return "".join(_ESC.get(c, c) for c in s)


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append(_UNESC.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def write_sample_losses(path: str | os.PathLike, names: Sequence[str], labels: Sequence[str],
                        sums: Sequence[float], counts: Sequence[int]) -> Path:
    """Write the history atomically (temporary file, fsync, rename); samples never seen are left out."""
    lines = [HEADER]
    for name, label, s, n in zip(names, labels, sums, counts):
        if n > 0:
            lines.append(f"{_escape(name)}\t{_escape(label)}\t{s / n:.6g}\t{int(n)}")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def read_sample_losses(path: str | os.PathLike) -> dict[str, SampleLoss]:
    """``{name: SampleLoss}`` from a file written by training; one-line errors naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CrnnError(f"{path}: cannot read the loss history ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise CrnnError(f"{path}: not a loss history file ({e})") from None
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise CrnnError(f"{path}: not a loss history file (training writes RUN/{FILE_NAME}; "
                        f"its first line is {HEADER!r})")
    out: dict[str, SampleLoss] = {}
    for no, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        try:
            if len(parts) != 4:
                raise ValueError(f"{len(parts)} fields, not 4")
            mean, seen = float(parts[2]), int(parts[3])
            if not math.isfinite(mean) or seen < 1:
                raise ValueError("loss not finite or never seen")
        except ValueError as e:
            raise CrnnError(f"{path}:{no}: not a loss history line ({e})") from None
        out[_unescape(parts[0])] = SampleLoss(_unescape(parts[1]), mean, seen)
    return out


def history_beside(model: str | os.PathLike) -> Path | None:
    """``RUN/sample_losses.tsv`` when ``model`` is a run's ``best.pt`` / ``last.pt`` and the file exists."""
    p = Path(str(model))
    if p.name not in ("best.pt", "last.pt"):
        return None
    h = p.with_name(FILE_NAME)
    return h if h.is_file() else None


__all__ = ["SampleLoss", "write_sample_losses", "read_sample_losses", "history_beside", "FILE_NAME"]
