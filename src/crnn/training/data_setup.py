"""Turn ``--train`` / ``--val`` locations into in-memory datasets, with a report.

The charset is fixed first (from the config or the training labels), then every
image is decoded, checked and resized once; samples that cannot be used are
skipped and listed (see :mod:`crnn.data.validate`), including labels too long
for the model's output: CTC needs at least one frame per character plus one
between repeated characters, so an image of width ``W`` can carry a label only
if ``T(W) >= len(label) + repeats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crnn.charset import Charset
from crnn.data.dataset import TextLineDataset
from crnn.data.images import Preprocess
from crnn.data.sources import Source, summarize
from crnn.data.validate import Report, check_samples
from crnn.errors import DataError


def ctc_frames_needed(label: str) -> int:
    """Minimum number of CTC frames for ``label``: one per character plus one per doubled letter."""
    return len(label) + sum(1 for a, b in zip(label, label[1:]) if a == b)


def length_check(output_length: Callable[[int], int]) -> Callable[[str, int], str | None]:
    def check(label: str, width: int) -> str | None:
        t, need = output_length(width), ctc_frames_needed(label)
        if t < need:
            return (f"label too long for the image: {len(label)} characters need {need} CTC frames but the image "
                    f"gives only {t} (make the image wider or the label shorter)")
        return None

    return check


@dataclass
class Loaded:
    dataset: TextLineDataset
    report: Report


def load_dataset(source: Source, pre: Preprocess, charset: Charset,
                 output_length: Callable[[int], int], max_width: int | None = None) -> Loaded:
    """Decode every usable sample of ``source`` into memory (wider than ``max_width`` px: skipped, counted)."""
    report = Report(str(source.location))
    arrays, labels, targets = [], [], []
    for s in check_samples(source, pre, charset, report, label_ok=length_check(output_length),
                               max_width=max_width):
        arrays.append(s.array)
        labels.append(s.label)
        targets.append(charset.encode(s.label))
    if not arrays:
        raise DataError(f"{source.location}: no usable sample ({len(report.skipped)} skipped: "
                        f"{summarize(report.skipped)})")
    return Loaded(TextLineDataset(arrays, labels, targets), report)


def split_validation(ds: TextLineDataset, fraction: float, max_val: int, seed: int
                     ) -> tuple[TextLineDataset, TextLineDataset | None]:
    """Hold out a seeded random share of ``ds`` for validation (None when ``ds`` is too small)."""
    n = len(ds)
    n_val = min(max_val, max(1, round(n * fraction))) if n >= 10 and fraction > 0 else 0
    if n_val == 0:
        return ds, None
    perm = np.random.default_rng(seed + 7919).permutation(n)
    val_idx, train_idx = sorted(perm[:n_val].tolist()), sorted(perm[n_val:].tolist())

    def subset(idx: list[int]) -> TextLineDataset:
        return TextLineDataset([ds.arrays[i] for i in idx], [ds.labels[i] for i in idx],
                               [ds.targets[i] for i in idx])

    return subset(train_idx), subset(val_idx)
