"""Decoded training images in one file, memory-mapped by every process that trains on them.

With ``crnn train --nproc N`` each process used to decode the whole training set into its own memory (each
takes its share of every batch, so each needs every image): two processes on 391,000 synthetic words and
lines held 11 GB each of a 24 GB machine, and eight on a GPU node would hold eight copies. Written once to a
file and mapped, the images sit once in the page cache, shared by all of them, and pages the system needs
back are read again from the file instead of a process being killed.

The processes decode a share of the records each, one store per share, and every process maps them all
(:func:`open_stores`), in the records' order. The layout is private to one run (written and removed by
:mod:`crnn.training.shared_decode`): ``images.u8`` (every array's bytes, one after the other), ``index.npy``
(offset, height, width, channels, the record's position in its source; 0 channels for a 2-D array) and
``labels.json`` (labels and record names).
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path
from types import TracebackType

import numpy as np

from crnn.charset import Charset
from crnn.data.dataset import TextLineDataset
from crnn.errors import CrnnError


class StoreWriter:
    """Append decoded arrays to a new store folder; :meth:`close` writes the index that makes it readable."""

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            folder.mkdir(parents=True)
            self._file = open(folder / "images.u8", "wb")  # noqa: SIM115 (closed in close())
        except OSError as e:
            raise _write_error(folder, e) from None
        self._index: list[tuple[int, int, int, int, int]] = []
        self._labels: list[str] = []
        self._names: list[str] = []
        self._offset = 0

    def add(self, array: np.ndarray, label: str, name: str, position: int = -1) -> None:
        """``position``: where the record stands in its source, the order :func:`open_stores` restores."""
        a = np.ascontiguousarray(array, dtype=np.uint8)
        h, w = a.shape[:2]
        c = a.shape[2] if a.ndim == 3 else 0
        try:
            self._file.write(a.tobytes())
        except OSError as e:
            raise _write_error(self.folder, e) from None
        self._index.append((self._offset, h, w, c, position))
        self._offset += a.nbytes
        self._labels.append(label)
        self._names.append(name)

    def close(self) -> None:
        try:
            self._file.close()
            np.save(self.folder / "index.npy", np.asarray(self._index, dtype=np.int64).reshape(-1, 5))
            (self.folder / "labels.json").write_text(json.dumps({"labels": self._labels, "names": self._names}),
                                                     encoding="utf-8")
        except OSError as e:
            raise _write_error(self.folder, e) from None

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()


def open_stores(folders: list[Path], charset: Charset) -> TextLineDataset:
    """Several stores (the shares of one source) as one dataset, in the order of the positions they recorded; its
    images are read-only views into the mapped files.

    The mappings outlive the files' names: the folders can be removed once every process has opened them, and
    the space is freed when the last of them exits.
    """
    rows: list[tuple[int, int, np.ndarray]] = []  # (position, k, array)
    labels: list[str] = []
    names: list[str] = []
    for folder in folders:
        index = np.load(folder / "index.npy")
        meta = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        if not len(index):
            continue
        with open(folder / "images.u8", "rb") as f:
            buf = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), dtype=np.uint8)
        for o, h, w, c, pos in index.tolist():
            rows.append((pos, len(rows), buf[o:o + h * w * max(c, 1)].reshape((h, w, c) if c else (h, w))))
        labels += meta["labels"]
        names += meta["names"]
    rows.sort(key=lambda r: (r[0], r[1]))
    order = [k for _, k, _ in rows]
    ordered = [labels[k] for k in order]
    return TextLineDataset([a for _, _, a in rows], ordered, [charset.encode(label) for label in ordered],
                           [names[k] for k in order])


def _write_error(folder: Path, e: OSError) -> CrnnError:
    return CrnnError(f"{folder}: cannot write the decoded training images ({e.strerror or e}); set TMPDIR to a "
                     "folder on a disk with room for them")
