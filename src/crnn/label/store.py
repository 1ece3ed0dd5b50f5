"""What a labelling session has written, and the one place that writes it.

The originals in ``DIR`` are only ever read. Labels go into ``OUT`` in one of two
forms the rest of the toolkit reads:

- ``copies``: a byte-identical copy of each image named by its label, ``OUT/HELLO.png``,
  ``OUT/HELLO_2.png`` for a second ``HELLO``; ``OUT/label-pattern.txt`` holds the
  matching ``--label-pattern`` (:data:`LABEL_PATTERN`). A label that itself ends in
  ``_<digits>`` is always numbered (``A_2`` -> ``A_2_1.png``), so the pattern reads
  every name back exactly.
- ``tsv``: a copy of each image under ``OUT/images/`` (same relative path as in ``DIR``)
  and ``OUT/labels.tsv``.

The session's own record, ``OUT/.crnn-label/session.json``, is the truth: every action
writes it first (temporary file + ``os.replace``), then the image copy, so a crash
loses at most the current image and a restart repairs what is missing (a copy the
record names is re-made from the original; a copy an undo was removing is removed).
The hidden folder is skipped by the data readers (and counted as such).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from crnn.charset import normalize
from crnn.data.images import is_image_path
from crnn.data.sources import bad_label, display
from crnn.errors import CrnnError
from crnn.fileio import atomic_write

LABEL_PATTERN = r"(.+?)(?:_\d+)?"
"""``--label-pattern`` of ``copies`` output: ``HELLO``, ``HELLO_2``, ``A_2_1`` read as ``HELLO``, ``HELLO``, ``A_2``."""
STATE_DIR = ".crnn-label"
STATE_FILE = "session.json"
PATTERN_FILE = "label-pattern.txt"
FORMATS = ("copies", "tsv")
MAX_NAME_BYTES = 200  # file systems allow 255; the _N suffix and the extension need room
_NUMBERED = re.compile(r".*_\d+")


@dataclass(frozen=True)
class Entry:
    """One labelled image: ``item`` is its path relative to ``DIR``, ``file`` the copy's path relative to ``OUT``."""

    item: str
    label: str
    file: str
    prefill: str | None = None
    at: float = 0.0

    @property
    def prefill_right(self) -> bool:
        return self.prefill is not None and self.prefill == self.label


def label_problem(label: str, fmt: str, allowed: str | None = None) -> str | None:
    """Why ``label`` cannot be written (empty, a control character, not a file name...); None if it can.

    ``allowed``: the only characters a label may hold (``crnn label --charset``).
    """
    if not label.strip():
        return "empty label: type the text, or skip the image"
    if label != label.strip():
        return "the label starts or ends with a space (labels files drop it): remove it"
    why = bad_label(label)
    if why:
        return why
    if allowed is not None:
        bad = sorted({c for c in label if c not in allowed})
        if bad:
            return f"characters outside the allowed charset: {''.join(bad)!r}"
    if fmt == "copies":
        if "/" in label or "\\" in label or "\0" in label:
            return "a label-named copy cannot hold '/' or '\\' (use --format tsv for such labels)"
        if label.startswith("."):
            return "a label-named copy cannot start with '.' (it would be a hidden file; use --format tsv)"
        if len(label.encode("utf-8")) > MAX_NAME_BYTES:
            return f"too long for a file name ({len(label.encode('utf-8'))} bytes; use --format tsv)"
    return None


def list_images(source: Path, out: Path) -> list[str]:
    """Image files below ``source`` (relative POSIX paths, sorted); hidden ones and ``out`` are left out."""
    items = []
    out_r = out.resolve()
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != out_r
                             and not (here / d).is_symlink())
        for name in sorted(filenames):
            f = here / name
            if not name.startswith(".") and f.is_file() and is_image_path(f):
                items.append(f.relative_to(source).as_posix())
    return sorted(items)


class LabelStore:
    """The labels of one ``DIR`` written into one ``OUT``; see the module doc for the layout."""

    def __init__(self, source: str | os.PathLike, out: str | os.PathLike, fmt: str = "copies"):
        self.source, self.out = Path(source), Path(out)
        self.state_path = self.out / STATE_DIR / STATE_FILE
        if fmt not in FORMATS:
            raise CrnnError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if not self.source.is_dir():
            raise CrnnError(f"{self.source}: not a folder of images to label")
        if self.out.resolve() == self.source.resolve():
            raise CrnnError(f"{self.out}: the output folder must not be the image folder (originals are never "
                            "renamed); give another --out")
        if self.out.exists() and not self.out.is_dir():
            raise CrnnError(f"{self.out}: is a file, but the labels need a folder there")
        self.fmt = fmt
        self.entries: dict[str, Entry] = {}
        self.skipped: list[str] = []
        self.history: list[dict] = []
        self.trash: list[str] = []
        self.extra: dict = {}
        if self.state_path.exists():
            self._load()
        self.items = list_images(self.source, self.out)
        if not self.items:
            raise CrnnError(f"{self.source}: no image files to label")
        self._repair()

    @classmethod
    def reopen(cls, out: str | os.PathLike) -> LabelStore:
        """The session already in ``out`` (its image folder and format come from its record)."""
        path = Path(out) / STATE_DIR / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            source, fmt = state["source"], state["format"]
        except FileNotFoundError:
            raise CrnnError(f"{out}: not a crnn label output folder (no {STATE_DIR}/{STATE_FILE}); --review "
                            "corrects labels written by crnn label") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CrnnError(f"{path}: unreadable labelling session ({type(e).__name__}: {e})") from None
        return cls(source, out, fmt)

    # -- the record --------------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            fmt, source = state["format"], state["source"]
            entries = [Entry(**e) for e in state["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CrnnError(f"{self.state_path}: unreadable labelling session ({type(e).__name__}: {e}); move it "
                            "away to start afresh") from None
        if fmt != self.fmt:
            raise CrnnError(f"{self.state_path}: this session writes --format {fmt}, not {self.fmt}; "
                            f"give --format {fmt} or another --out")
        if Path(source).resolve() != self.source.resolve():
            raise CrnnError(f"{self.state_path}: this session labels {source}, not {self.source}; "
                            "give that folder or another --out")
        self.entries = {e.item: e for e in entries}
        self.skipped = list(state.get("skipped", []))
        self.history = list(state.get("history", []))
        self.trash = list(state.get("trash", []))
        self.extra = dict(state.get("extra", {}))

    def _save(self) -> None:
        state = {"version": 1, "format": self.fmt, "source": str(self.source.resolve()),
                 "label_pattern": LABEL_PATTERN if self.fmt == "copies" else None,
                 "entries": [asdict(e) for e in self.entries.values()], "skipped": self.skipped,
                 "history": self.history[-1000:], "trash": self.trash, "extra": self.extra}
        data = json.dumps(state, ensure_ascii=False, indent=0).encode("utf-8")
        atomic_write(self.state_path, lambda f: f.write(data))

    def _repair(self) -> None:
        """Finish what a crash interrupted: re-make missing copies, remove the ones an undo was removing."""
        if self.fmt == "copies":
            pattern = self.out / PATTERN_FILE
            if not pattern.exists():
                atomic_write(pattern, lambda f: f.write((LABEL_PATTERN + "\n").encode()))
        for e in self.entries.values():
            if not (self.out / e.file).exists() and (self.source / e.item).exists():
                self._copy(e)
        self._empty_trash()
        if self.fmt == "tsv" and (self.entries or (self.out / "labels.tsv").exists()):
            self._write_tsv()

    def _empty_trash(self) -> None:
        used = {e.file for e in self.entries.values()}
        for name in self.trash:
            if name not in used:
                (self.out / name).unlink(missing_ok=True)
        if self.trash:
            self.trash = []
            self._save()

    # -- files -------------------------------------------------------------------------------------------------
    def original(self, item: str) -> Path:
        return self.source / item

    def output(self, item: str) -> Path | None:
        e = self.entries.get(item)
        return None if e is None else self.out / e.file

    def _copy(self, e: Entry) -> None:
        data = self.original(e.item).read_bytes()
        atomic_write(self.out / e.file, lambda f: f.write(data))

    def _write_tsv(self) -> None:
        lines = "".join(f"{e.file}\t{e.label}\n" for e in sorted(self.entries.values(), key=lambda e: e.file))
        atomic_write(self.out / "labels.tsv", lambda f: f.write(lines.encode("utf-8")))

    def _file_for(self, item: str, label: str) -> str:
        if self.fmt == "tsv":
            return f"images/{item}"
        ext = Path(item).suffix
        taken = {Path(e.file).stem for i, e in self.entries.items() if i != item}
        try:
            taken |= {p.stem for p in self.out.iterdir() if p.is_file()}
        except FileNotFoundError:
            pass
        mine = self.entries.get(item)
        if mine is not None:
            taken.discard(Path(mine.file).stem)  # relabelling may keep its own name
        k = 1
        while True:
            stem = label if k == 1 and not _NUMBERED.fullmatch(label) else f"{label}_{k}"
            if stem not in taken:
                return stem + ext
            k += 1

    # -- actions -----------------------------------------------------------------------------------------------
    def label(self, item: str, text: str, prefill: str | None = None, allowed: str | None = None) -> Entry:
        """Record ``text`` as the label of ``item`` (replacing an earlier one) and write its copy."""
        if item not in self.items:
            raise CrnnError(f"{display(item)}: not an image of {self.source}")
        text = normalize(text)
        why = label_problem(text, self.fmt, allowed)
        if why:
            raise CrnnError(why)
        before = self.entries.get(item)
        entry = Entry(item, text, self._file_for(item, text), prefill if before is None else before.prefill,
                      time.time())
        self.entries[item] = entry
        if item in self.skipped:
            self.skipped.remove(item)
        self.history.append({"op": "label", "item": item, "before": asdict(before) if before else None})
        if before is not None and before.file != entry.file:
            self.trash.append(before.file)
        self._save()
        if before is None or before.file != entry.file:
            self._copy(entry)
        if self.fmt == "tsv":
            self._write_tsv()
        self._empty_trash()
        return entry

    def skip(self, item: str) -> None:
        """Put ``item`` at the end of the queue (it stays unlabelled)."""
        if item in self.skipped:
            self.skipped.remove(item)
        self.skipped.append(item)
        self.history.append({"op": "skip", "item": item})
        self._save()

    def undo(self) -> tuple[str, str | None] | None:
        """Take back the last label or skip: ``(item, the label it had been given or None)``; None if nothing."""
        if not self.history:
            return None
        act = self.history.pop()
        item = act["item"]
        if act["op"] == "skip":
            if item in self.skipped:
                self.skipped.remove(item)
            self._save()
            return item, None
        undone = self.entries.pop(item, None)
        before = Entry(**act["before"]) if act.get("before") else None
        if before is not None:
            self.entries[item] = before
        if undone is not None and (before is None or before.file != undone.file):
            self.trash.append(undone.file)
        self._save()
        if before is not None and not (self.out / before.file).exists():
            self._copy(before)
        if self.fmt == "tsv":
            self._write_tsv()
        self._empty_trash()
        return item, undone.label if undone else None

    def data_location(self) -> tuple[Path, str | None]:
        """What to train on: ``(OUT or OUT/labels.tsv, the --label-pattern to read it with)``."""
        if self.fmt == "tsv":
            return self.out / "labels.tsv", None
        return self.out, LABEL_PATTERN

    def item_of_output(self, path: str | os.PathLike) -> str | None:
        """The original behind a copy in ``OUT`` (for ``--review``), or None."""
        try:
            rel = Path(path).resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return None
        for e in self.entries.values():
            if e.file == rel:
                return e.item
        return None


__all__ = ["LabelStore", "Entry", "label_problem", "list_images", "LABEL_PATTERN", "FORMATS"]
