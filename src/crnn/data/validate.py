"""Decode and check every sample of a source, counting what is skipped and why.

Used by ``crnn prepare`` (which then writes the survivors to LMDB) and by
training (which keeps the decoded, resized uint8 arrays in memory), so both
apply exactly the same rules and report them the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from crnn.charset import Charset
from crnn.data.images import Preprocess, load_image, to_model_array
from crnn.data.sources import Record, Source, reason_kind
from crnn.errors import DataError


@dataclass
class Report:
    """What a pass over a dataset found; printed by prepare and train."""

    location: str
    total: int = 0
    kept: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unknown_chars: Counter[str] = field(default_factory=Counter)
    label_lengths: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))

    def reasons(self) -> Counter[str]:
        """Skip reasons grouped by their kind (the text before any colon or parenthesis)."""
        return Counter(_reason_kind(r) for _, r in self.skipped)

    def to_dict(self) -> dict:
        return {
            "location": self.location,
            "total": self.total,
            "kept": self.kept,
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(self.reasons()),
            "skipped_examples": [{"file": n, "reason": r} for n, r in self.skipped[:50]],
            "unknown_chars": dict(self.unknown_chars.most_common()),
            "label_length": _stats(self.label_lengths),
            "image_width": _stats(self.widths),
            "image_height": _stats(self.heights),
        }

    def to_state(self) -> dict:
        """Everything, JSON-ready (:meth:`to_dict` is the summary users see)."""
        return {**dataclasses.asdict(self), "unknown_chars": dict(self.unknown_chars)}

    @classmethod
    def from_state(cls, d: dict) -> Report:
        return cls(**{**d, "skipped": [tuple(x) for x in d["skipped"]], "unknown_chars": Counter(d["unknown_chars"])})

    @classmethod
    def merged(cls, parts: list[Report], order: dict[str, int]) -> Report:
        """The reports of the shares of one source as one, the skipped samples in ``order`` (name -> position;
        names it lacks, such as what was skipped while listing the source, first)."""
        out = cls(parts[0].location if parts else "")
        for r in parts:
            out.total += r.total
            out.kept += r.kept
            out.skipped += r.skipped
            out.unknown_chars.update(r.unknown_chars)
            out.label_lengths += r.label_lengths
            out.widths += r.widths
            out.heights += r.heights
        out.skipped.sort(key=lambda s: order.get(s[0], -1))
        return out

    def format(self, max_lines: int = 20) -> str:
        """A readable summary: counts, reasons, examples, statistics."""
        lines = [f"{self.location}: {self.kept} usable samples of {self.total}, {len(self.skipped)} skipped"]
        for reason, n in self.reasons().most_common():
            lines.append(f"  skipped {n:6d} x {reason}")
        for name, reason in self.skipped[:max_lines]:
            lines.append(f"    {name}: {reason}")
        if len(self.skipped) > max_lines:
            lines.append(f"    ... and {len(self.skipped) - max_lines} more (see the JSON report)")
        if self.unknown_chars:
            chars = ", ".join(f"{c!r} x{n}" for c, n in self.unknown_chars.most_common(20))
            lines.append(f"  characters outside the charset: {chars}")
        for title, values in (("label length", self.label_lengths), ("image width", self.widths),
                              ("image height", self.heights)):
            s = _stats(values)
            if s:
                lines.append(f"  {title}: min {s['min']}, mean {s['mean']:.1f}, median {s['median']}, max {s['max']}")
        return "\n".join(lines)


_reason_kind = reason_kind


def _stats(values: list[int]) -> dict:
    if not values:
        return {}
    a = np.asarray(values)
    return {"min": int(a.min()), "mean": float(a.mean()), "median": int(np.median(a)), "max": int(a.max())}


@dataclass
class Checked:
    """A sample that passed every check."""

    record: Record
    label: str
    array: np.ndarray
    data: bytes


def check_samples(source: Source, pre: Preprocess, charset: Charset | None = None,
                  report: Report | None = None, dedupe: bool = False,
                  label_ok: Callable[[str, int], str | None] | None = None,
                  max_width: int | None = None) -> Iterator[Checked]:
    """Yield every usable sample of ``source``; record the others in ``report``.

    ``charset``: labels with characters outside it are skipped and their
    characters counted. ``label_ok(label, width)`` may return a reason to skip
    (training uses it for labels too long for the model's output length).
    ``max_width``: images wider than this after resizing are skipped and counted
    (training's memory bound, ``data.max_width``); nothing is ever squeezed.
    """
    report = report if report is not None else Report(str(source.location))
    report.total += len(source.records) + len(source.skipped)
    report.skipped.extend(source.skipped)
    seen: dict[bytes, str] = {}
    for rec in source.records:
        try:
            data = source.read_bytes(rec)
            if not data:
                raise DataError(f"{rec.name}: empty file (0 bytes)")
            img = load_image(data, rec.name, pre.max_pixels)
            width = pre.resized_width(img.width, img.height)
            if max_width is not None and width > max_width:
                raise DataError(f"{rec.name}: wider than data.max_width after resizing ({width} px at height "
                                f"{pre.height}, limit {max_width}; raise data.max_width to train on it)")
            array = to_model_array(img, pre, rec.name)
        except DataError as e:
            report.skip(rec.name, str(e).removeprefix(f"{rec.name}: "))
            continue
        label = rec.label
        if charset is not None:
            bad = charset.unknown(label)
            if bad:
                report.unknown_chars.update(bad)
                report.skip(rec.name, f"characters outside the charset: {''.join(sorted(bad))!r}")
                continue
        if dedupe:
            digest = hashlib.blake2b(data + b"\0" + label.encode(), digest_size=16).digest()
            if digest in seen:
                report.skip(rec.name, f"duplicate of an earlier file: {seen[digest]}")
                continue
            seen[digest] = rec.name
        if label_ok is not None:
            why = label_ok(label, array.shape[1])
            if why:
                report.skip(rec.name, why)
                continue
        report.kept += 1
        report.label_lengths.append(len(label))
        report.widths.append(img.width)
        report.heights.append(img.height)
        yield Checked(rec, label, array, data)
