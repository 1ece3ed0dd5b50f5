"""``crnn prepare``: validate a dataset and write it as LMDB, with a report of what was skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.data.lmdb_store import LmdbWriter
from crnn.data.sources import open_source, summarize
from crnn.data.validate import Report, check_samples
from crnn.errors import DataError
from crnn.fileio import check_output_parent


def prepare(src: str | os.PathLike, out: str | os.PathLike, pre: Preprocess | None = None,
            charset: str | None = None, label_pattern: str | None = None, force: bool = False,
            chosen: dict | None = None) -> Report:
    """Check every sample of ``src`` and write the usable ones to the LMDB folder ``out``.

    The original encoded image bytes are stored (as crnn.pytorch and
    deep-text-recognition-benchmark do), after checking that each decodes.
    Exact duplicates (same bytes, same label) are skipped. Nothing is written
    under ``out`` unless at least one sample is usable, and an existing dataset
    there is replaced only with ``force`` and only once the new one is complete.

    ``chosen`` (e.g. ``{"height": 32}``) and ``label_pattern`` are recorded under ``prepared_with`` in the
    metadata; ``train`` then uses them, or refuses a setting that contradicts them.
    """
    pre = pre or Preprocess()
    out = Path(out)
    if out.exists() and not force:
        raise DataError(f"{out}: already exists (pass --force to replace it)")
    check_output_parent(out, "dataset")
    source = open_source(src, label_pattern)
    if out.resolve() == Path(source.location).resolve():
        raise DataError(f"{out}: output would overwrite the input")
    cs = Charset(charset) if charset else None
    report = Report(str(source.location))
    writer = LmdbWriter(out, overwrite=force)
    try:
        labels = []
        for s in check_samples(source, pre, cs, report, dedupe=True):
            writer.add(s.data, s.label)
            labels.append(s.label)
        if not labels:
            raise DataError(f"{source.location}: no usable sample ({len(report.skipped)} skipped: "
                            f"{summarize(report.skipped)}); nothing written")
        used = cs or Charset.from_labels(labels)
        writer.set_meta({"charset": used.chars, "height": pre.height, "channels": pre.channels,
                         "prepared_with": {**(chosen or {}),
                                           **({"label_pattern": label_pattern} if label_pattern else {})},
                         "source": str(source.location), "report": report.to_dict()})
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return report
