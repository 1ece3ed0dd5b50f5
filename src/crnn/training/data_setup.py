"""Turn ``--train`` / ``--val`` locations into in-memory datasets, with a report.

The charset is fixed first (from the config or the training labels), then every
image is decoded, checked and resized once; samples that cannot be used are
skipped and listed (see :mod:`crnn.data.validate`), including labels too long
for the model's output: CTC needs at least one frame per character plus one
between repeated characters, so an image of width ``W`` can carry a label only
if ``T(W) >= len(label) + repeats``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crnn.charset import Charset
from crnn.config import Config
from crnn.data.dataset import TextLineDataset
from crnn.data.decoded_store import StoreWriter
from crnn.data.images import Preprocess
from crnn.data.sources import Source, summarize
from crnn.data.validate import Report, check_samples
from crnn.errors import ConfigError, DataError


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


def prepared_settings(sources: list[Source], key: str) -> set[tuple[Any, Any]]:
    """``(location, value)`` for each source whose ``crnn prepare`` recorded ``key`` (under ``prepared_with``
    in the LMDB's ``crnn-meta``; only the settings it was given are recorded)."""
    return {(src.location, src.meta["prepared_with"][key]) for src in sources
            if isinstance(src.meta.get("prepared_with"), dict) and src.meta["prepared_with"].get(key) is not None}


def apply_dataset_settings(cfg: Config, sources: list[Source], explicit: set[str] | frozenset[str],
                           fine_tuning: bool, say: Callable[[str], None]) -> None:
    """Take the height, channels and label pattern a dataset was prepared with (``crnn prepare`` records the
    ones it was given under ``prepared_with`` in the LMDB's ``crnn-meta``), or refuse a setting that
    contradicts them, in one line.

    Without this, ``prepare --height 32`` was ignored by ``train`` without a word, and a model trained on a
    dataset prepared with ``--label-pattern`` forgot the pattern, so ``eval`` on the original folder scored 0 %.
    A fine-tune keeps the init model's height and channels (its weights need them); the stored images are
    original bytes, readable at any height, so a dataset prepared for another height is said, not refused.
    """
    for key in ("height", "channels", "label_pattern"):
        found = prepared_settings(sources, key)
        values = {v for _, v in found}
        if not values:
            continue
        if len(values) > 1:
            where = ", ".join(f"{loc} ({v})" for loc, v in sorted(found, key=str))
            raise ConfigError(f"data.{key}: the training datasets were prepared with different values: {where}")
        value = values.pop()
        mine = getattr(cfg.data, key)
        where = ", ".join(sorted(str(loc) for loc, _ in found))
        if key == "label_pattern":
            if mine is None:
                cfg.data.label_pattern = value  # recorded in the checkpoint, so eval reads folders the same way
            continue
        if mine == value:
            continue
        if fine_tuning:
            say(f"{where}: prepared for data.{key}={value}; fine-tuning uses the init model's {mine} "
                "(the stored images are read at any size)")
        elif f"data.{key}" in explicit:
            raise ConfigError(f"data.{key}={mine} differs from the {value} that {where} was prepared with "
                              f"(crnn prepare --{key}); drop the setting or prepare the data again")
        else:
            say(f"{where}: using data.{key}={value}, as it was prepared (crnn prepare --{key})")
            setattr(cfg.data, key, value)


@dataclass
class Loaded:
    dataset: TextLineDataset
    report: Report


def load_dataset(source: Source, pre: Preprocess, charset: Charset,
                 output_length: Callable[[int], int], max_width: int | None = None) -> Loaded:
    """Decode every usable sample of ``source`` into memory (wider than ``max_width`` px: skipped, counted)."""
    report = Report(str(source.location))
    arrays, labels, targets, names = [], [], [], []
    for s in check_samples(source, pre, charset, report, label_ok=length_check(output_length),
                               max_width=max_width):
        arrays.append(s.array)
        labels.append(s.label)
        targets.append(charset.encode(s.label))
        names.append(s.record.name)
    if not arrays:
        raise no_usable_sample(source, report)
    return Loaded(TextLineDataset(arrays, labels, targets, names), report)


def decode_share(source: Source, pre: Preprocess, charset: Charset, output_length: Callable[[int], int],
                 max_width: int | None, share: int, of: int, store: Path) -> Report:
    """Decode records ``share``, ``share + of``, ... of ``source`` into a new store at ``store``, each with its
    position in the source (:mod:`crnn.training.shared_decode`: the processes of a machine decode a share each).
    What was skipped while listing the source counts in share 0. A share may be empty; the caller checks the
    whole."""
    part = dataclasses.replace(source, records=source.records[share::of], skipped=source.skipped if share == 0 else [])
    position = {id(r): share + of * i for i, r in enumerate(part.records)}
    report = Report(str(source.location))
    with StoreWriter(store) as writer:
        for s in check_samples(part, pre, charset, report, label_ok=length_check(output_length), max_width=max_width):
            writer.add(s.array, s.label, s.record.name, position[id(s.record)])
    return report


def no_usable_sample(source: Source, report: Report) -> DataError:
    return DataError(f"{source.location}: no usable sample ({len(report.skipped)} skipped: "
                     f"{summarize(report.skipped)})")


def split_validation(ds: TextLineDataset, fraction: float, max_val: int, seed: int
                     ) -> tuple[TextLineDataset, TextLineDataset | None]:
    """Hold out a seeded random share of ``ds`` for validation (None when ``ds`` is too small)."""
    n = len(ds)
    n_val = min(max_val, max(1, round(n * fraction))) if n >= 10 and fraction > 0 else 0
    if n_val == 0:
        return ds, None
    perm = np.random.default_rng(seed + 7919).permutation(n)
    val_idx, train_idx = sorted(perm[:n_val].tolist()), sorted(perm[n_val:].tolist())
    return ds.subset(train_idx), ds.subset(val_idx)
