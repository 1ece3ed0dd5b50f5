"""Where samples come from: a folder of label-named images, a labels file, or an LMDB.

Wherever the CLI asks for a dataset, all three are accepted; :func:`open_source`
tells them apart. A source only *lists* samples (name, label, how to get the
bytes); decoding and validation happen in :mod:`crnn.data.validate`, so the
same checks apply to every kind of source.

Rules for a folder:
- if it holds ``labels.tsv``, ``labels.txt`` or ``gt.txt``, that file is used;
- if it holds ``data.mdb`` it is an LMDB dataset;
- otherwise every image below it (subfolders too) is a sample whose label is the
  file stem (``HELLO.png`` -> ``HELLO``), or the first group of ``label_pattern``
  matched against the stem (``(.+)_\\d+`` turns ``HELLO_3.png`` into ``HELLO``).
"""

from __future__ import annotations

import os
import random
import re
import stat
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crnn.charset import normalize
from crnn.data.images import is_image_path, load_image
from crnn.data.lmdb_store import LmdbReader, is_lmdb
from crnn.errors import DataError

LABEL_FILES = ("labels.tsv", "labels.txt", "gt.txt")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # not str.splitlines(): that also splits on \x0b, \x1c, \x85, \u2028...


def reason_kind(reason: str) -> str:
    """What a skip reason is, without its details: the text before any colon or parenthesis."""
    for sep in (":", " ("):
        if sep in reason:
            reason = reason.split(sep, 1)[0]
    return reason


def summarize(skipped: list[tuple[str, str]], top: int = 3) -> str:
    """``"5 not an image, 2 empty label"``: the most common kinds of skip reason."""
    return ", ".join(f"{n} {r}" for r, n in Counter(reason_kind(r) for _, r in skipped).most_common(top))


def display(text: str) -> str:
    """A file name or label fit for a one-line message: control, line-break and undecodable characters escaped."""
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text)


def bad_label(label: str) -> str | None:
    """Why ``label`` cannot be a label (a control or undecodable character), else None."""
    if label.isprintable():
        return None
    bad = sorted({c for c in label if unicodedata.category(c) in ("Cc", "Cs")})
    if bad:
        return f"label contains a control or undecodable character: {display(''.join(bad))}"
    return None


@dataclass(frozen=True)
class Record:
    """One listed sample: ``name`` is what messages show (a path or an LMDB key)."""

    name: str
    label: str
    path: Path | None = None
    index: int | None = None


@dataclass
class Source:
    """The samples of one dataset, plus what was skipped while listing it and why."""

    location: Path
    kind: str
    records: list[Record]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    _reader: LmdbReader | None = None

    def read_bytes(self, rec: Record) -> bytes:
        if rec.path is not None:
            try:
                return rec.path.read_bytes()
            except OSError as e:
                raise DataError(f"{rec.name}: unreadable file ({e.strerror or e})") from None
        assert self._reader is not None and rec.index is not None
        try:
            return self._reader.image_bytes(rec.index)
        except KeyError:
            raise DataError(f"{rec.name}: image missing from the LMDB dataset") from None

    def __len__(self) -> int:
        return len(self.records)


def open_source(path: str | os.PathLike, label_pattern: str | None = None) -> Source:
    """List the samples of a folder, labels file or LMDB dataset (see module doc)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if p.is_file():
        if p.name == "data.mdb":
            return _lmdb(p.parent)
        return _labels_file(p)
    if is_lmdb(p):
        return _lmdb(p)
    for name in LABEL_FILES:
        if (p / name).is_file():
            return _labels_file(p / name)
    return _folder(p, label_pattern)


def _compile(label_pattern: str | None) -> re.Pattern[str] | None:
    if label_pattern is None:
        return None
    try:
        rx = re.compile(label_pattern)
    except re.error as e:
        raise DataError(f"--label-pattern {label_pattern!r}: not a valid regular expression ({e})") from None
    if rx.groups < 1:
        raise DataError(f"--label-pattern {label_pattern!r}: needs one (group) that captures the label")
    return rx


def _kind_of_special(path: Path) -> str:
    mode = path.lstat().st_mode
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a file or folder"


def link_escapes(path: Path, base: Path) -> str | None:
    """Why the symlink ``path`` may not be read: its target is outside ``base`` (and beside it); else None.

    A link to a sibling in its own folder is fine; a link to ``/etc/passwd`` would read a file the
    dataset's folder does not hold, and ``prepare`` would copy its bytes into the LMDB.
    """
    if not path.is_symlink():
        return None
    target = path.resolve()
    if target.is_relative_to(base.resolve()) or target.is_relative_to(path.parent.resolve()):
        return None
    return f"symlink points outside the folder (to {display(str(target))})"


def _unreadable_entry(path: Path, base: Path) -> str | None:
    """Why a listed file is not read: a link out of the folder, a broken link, a FIFO/socket/device."""
    why = link_escapes(path, base)
    if why:
        return why
    if path.is_symlink() and not path.exists():
        return "broken symlink"
    if not path.is_file():
        return f"not a regular file ({_kind_of_special(path)})"
    return None


def _list_folder(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every regular file below ``root``, and every entry that is not read, with the reason.

    Hidden entries (``.x.png``, ``.git/``) and special files are skipped and counted, not passed
    over in silence; symlinked folders are not followed (a loop would never end).
    """
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            d = here / name
            if name.startswith("."):
                skipped.append((display(str(d)), "hidden folder (its name starts with '.'), not read"))
            elif d.is_symlink():
                skipped.append((display(str(d)), "symlinked folder, not followed (list its images in a labels.tsv)"))
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            f = here / name
            why = "hidden file (its name starts with '.')" if name.startswith(".") else _unreadable_entry(f, root)
            if why:
                skipped.append((display(str(f)), why))
            else:
                files.append(f)
    return sorted(files), sorted(skipped)


def _folder(root: Path, label_pattern: str | None) -> Source:
    rx = _compile(label_pattern)
    records: list[Record] = []
    files, skipped = _list_folder(root)
    for f in files:
        name = display(str(f))
        if not is_image_path(f):
            skipped.append((name, f"not an image file extension ({f.suffix or 'none'})"))
            continue
        stem = normalize(f.stem)
        if rx is not None:
            m = rx.fullmatch(stem)
            if m is None:
                skipped.append((name, f"file name does not match --label-pattern ({rx.pattern!r})"))
                continue
            stem = m.group(1) or ""
        if not stem.strip():
            skipped.append((name, "empty label"))
            continue
        why = bad_label(stem)
        if why:
            skipped.append((name, why))
            continue
        records.append(Record(name, stem, path=f))
    if not records and not skipped:
        raise DataError(f"{root}: folder is empty (expected images named LABEL.png, or a labels.tsv)")
    _require_records(root, records, skipped)
    return Source(root, "folder", records, skipped)


def _require_records(where: Path, records: list[Record], skipped: list[tuple[str, str]]) -> None:
    if not records:
        raise DataError(f"{where}: no usable sample ({len(skipped)} skipped: {summarize(skipped)})")


def _labels_file(file: Path) -> Source:
    base = file.parent
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise DataError(f"{file}: cannot read labels file ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{file}: line {bad} is not valid UTF-8 (labels files must be UTF-8)") from None
    records, skipped = [], []
    first: dict[Path, tuple[int, str]] = {}  # each image once: a second line for it is skipped, and says so
    for lineno, line in enumerate(_LINE_BREAK.split(text), 1):
        if not line.strip():
            continue
        where = f"{file}:{lineno}"
        cols = line.split("\t")
        if len(cols) < 2:
            skipped.append((where, "no TAB between path and label"))
            continue
        rel, label = cols[0].strip(), normalize(cols[1].strip())
        if not rel:
            skipped.append((where, "empty path"))
            continue
        if not label:
            skipped.append((where, f"empty label (for {display(rel)})"))
            continue
        why = bad_label(label)
        if why:
            skipped.append((where, why))
            continue
        # Lexical check, so a symlinked image folder inside the data folder still works; a symlinked
        # *file* that leads out of the folder is refused below (_unreadable_entry).
        norm = os.path.normpath(rel)
        if os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep):
            skipped.append((where, f"path outside the data folder: {display(rel)}"))
            continue
        target = base / norm
        try:
            found = target.exists() or target.is_symlink()
            why = _unreadable_entry(target, base) if found else None
        except OSError as e:  # a name too long for the file system, say
            skipped.append((where, f"cannot access the file: {display(rel)} ({e.strerror or e})"))
            continue
        if not found:
            skipped.append((where, f"file not found: {display(rel)}"))
            continue
        if why:
            skipped.append((where, f"{why}: {display(rel)}"))
            continue
        if target in first:
            line0, label0 = first[target]
            again = "the same label" if label0 == label else f"label {label0!r} there, {label!r} here"
            skipped.append((where, f"image named twice (line {line0} is used; {again}): {display(rel)}"))
            continue
        first[target] = (lineno, label)
        records.append(Record(display(str(target)), label, path=target))
    if not records and not skipped:
        raise DataError(f"{file}: labels file is empty")
    _require_records(file, records, skipped)
    return Source(file, "labels", records, skipped)


def _lmdb(root: Path) -> Source:
    try:
        reader = LmdbReader(root)
    except ValueError as e:
        raise DataError(str(e)) from None
    except Exception as e:  # lmdb.Error and friends
        raise DataError(f"{root}: cannot open LMDB dataset ({e})") from None
    records, skipped = [], []
    for i in range(len(reader)):
        name = f"{root}#{i + 1}"
        try:
            label = normalize(reader.label(i))
        except KeyError:
            skipped.append((name, "label missing from the LMDB dataset"))
            continue
        except UnicodeDecodeError:
            skipped.append((name, "label is not valid UTF-8"))
            continue
        why = "empty label" if not label.strip() else bad_label(label)
        if why:
            skipped.append((name, why))
            continue
        records.append(Record(name, label, index=i))
    if not records and not skipped:
        raise DataError(f"{root}: LMDB dataset has no samples")
    _require_records(root, records, skipped)
    return Source(root, "lmdb", records, skipped, reader.meta, reader)


def tsv_field(text: str) -> str:
    r"""A TSV cell that cannot break its row: backslash, TAB, CR and LF written as ``\\``, ``\t``, ``\r``,
    ``\n`` (the IANA/PostgreSQL convention), other control characters as ``\xNN``."""
    text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return display(text)


def common_height(sources: list[Source], sample: int = 200, share: float = 0.9) -> int | None:
    """The height (px, upright) that at least ``share`` of a seeded sample of the listed images have, or None.

    Fixed-size crops (CAPTCHAs, one scanner's lines at one resolution) share one height; a fine-tune reads
    them at it rather than downscaling (:func:`crnn.training.finetune.native_height`). Samples that cannot be
    decoded are left out here: validation reports them when the images are loaded.
    """
    pool = [(src, rec) for src in sources for rec in src.records]
    if not pool:
        return None
    picked = random.Random(0).sample(pool, min(sample, len(pool)))
    heights: Counter[int] = Counter()
    for src, rec in picked:
        try:
            heights[load_image(src.read_bytes(rec), rec.name).height] += 1
        except DataError:
            continue
    if not heights:
        return None
    height, count = heights.most_common(1)[0]
    return height if count >= share * len(picked) else None
