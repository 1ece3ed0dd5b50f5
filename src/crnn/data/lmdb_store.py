"""LMDB datasets in the layout crnn.pytorch and deep-text-recognition-benchmark use.

Keys: ``num-samples`` (ASCII int), ``image-%09d`` (the encoded image file bytes),
``label-%09d`` (UTF-8 label), indices starting at 1. We add ``crnn-meta``: a JSON
object (charset, image height, the prepare report) that other tools ignore.

Writing goes to a temporary folder beside the target that is renamed into place
only when complete, so an interrupted or failed write never leaves a half
dataset under the requested name, nor destroys one that was there. The writer
holds an ``flock`` on that folder; one left by a killed ``prepare`` (``.NAME.*.tmp``,
no lock held) is removed by the next write to the same name.

The map (LMDB's upper bound on the file size, reserved as address space) starts small
and doubles as the data grows: a fixed 1 TiB map fails with ``lmdb.MemoryError``
under ``ulimit -v``, and the data decides how much is needed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lmdb

from crnn.fileio import fcntl, remove_if_unlocked, replace_folder

META_KEY = b"crnn-meta"

# py-lmdb refuses to open one environment twice in a process, so readers of the
# same dataset (say --train and --val pointing at one LMDB) share a handle.
# Keyed by pid too: a handle must not cross a fork into loader workers.
_READ_ENVS: dict[tuple[str, int], lmdb.Environment] = {}


def _read_env(path: Path, resolved: str) -> lmdb.Environment:
    """The process's read handle on ``path``, keyed by ``resolved``, its resolved form, which the reader works
    out once (resolving on every read took 14 % of loading a dataset's samples)."""
    key = (resolved, os.getpid())
    env = _READ_ENVS.get(key)
    if env is None:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=256)
        _READ_ENVS[key] = env
    return env


def _lmdb_reason(e: Exception) -> str:
    """py-lmdb's message without its C-level prefix: ``mdb_env_open: Cannot allocate memory`` -> the reason."""
    text = str(e).split(": ", 1)[-1] if ": " in str(e) else (str(e) or type(e).__name__)
    return text.splitlines()[0][:160] if text else type(e).__name__


def is_lmdb(path: str | os.PathLike) -> bool:
    """True for a folder holding an LMDB environment (``data.mdb``)."""
    p = Path(path)
    return p.is_dir() and (p / "data.mdb").is_file()


class LmdbWriter:
    """Write samples to a new LMDB dataset, atomically.

    >>> with LmdbWriter("out.lmdb") as w:          # doctest: +SKIP
    ...     w.add(open("HELLO.png", "rb").read(), "HELLO")
    ...     w.set_meta({"height": 32})
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, map_size: int = 64 << 20):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: already exists (pass --force to replace it)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.removed_stale = [p for p in sorted(self.path.parent.glob(f".{glob.escape(self.path.name)}.*.tmp"))
                              if p.is_dir() and remove_if_unlocked(p)]
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o777 & ~umask)  # a dataset folder, not mkdtemp's private 0700
        self._lock = os.open(self._tmp, os.O_RDONLY)
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._map_size = map_size
        self._bytes = 0
        try:
            self._env = lmdb.open(str(self._tmp), map_size=map_size, subdir=True, lock=False)
            self._txn = self._env.begin(write=True)
            self._page = int(self._env.stat()["psize"])
        except lmdb.Error as e:
            self._cleanup()
            raise OSError(f"{self.path}: cannot create the LMDB dataset ({_lmdb_reason(e)})") from None
        self.count = 0
        self._meta: dict[str, Any] = {}

    def _footprint(self, key: bytes, value: bytes) -> int:
        """Bytes of map one put takes. A value over about half a page gets overflow pages of its own, so an
        8.2 KB PNG takes three 4 KB pages (1.5x its bytes; counting 1.25x filled the map at 65,800 of 80,000
        synthetic words); smaller entries share leaf pages, which B-tree splits leave about half full."""
        entry = len(key) + len(value) + 16
        if entry > self._page // 2:
            return -(-(len(value) + 16) // self._page) * self._page + 2 * (len(key) + 24)
        return 2 * entry

    def _put(self, key: bytes, value: bytes) -> None:
        # Grow the map before it is full (a full map fails the transaction, losing its uncommitted puts).
        self._bytes += self._footprint(key, value)
        if self._bytes * 1.1 + (8 << 20) > self._map_size:
            self._txn.commit()
            while self._bytes * 1.1 + (8 << 20) > self._map_size:
                self._map_size *= 2
            try:
                self._env.set_mapsize(self._map_size)
            except lmdb.Error as e:
                raise OSError(f"{self.path}: cannot grow the LMDB dataset to {self._map_size >> 20} MiB "
                              f"({_lmdb_reason(e)})") from None
            self._txn = self._env.begin(write=True)
        try:
            self._txn.put(key, value)
        except lmdb.Error as e:
            raise OSError(f"{self.path}: cannot write the LMDB dataset ({_lmdb_reason(e)})") from None

    def add(self, image_bytes: bytes, label: str) -> None:
        self.count += 1
        self._put(b"image-%09d" % self.count, image_bytes)
        self._put(b"label-%09d" % self.count, label.encode("utf-8"))
        if self.count % 1000 == 0:  # keep transactions bounded
            self._txn.commit()
            self._txn = self._env.begin(write=True)

    def set_meta(self, meta: dict[str, Any]) -> None:
        self._meta = dict(meta)

    def commit(self) -> Path:
        self._put(b"num-samples", str(self.count).encode())
        self._put(META_KEY, json.dumps(self._meta, ensure_ascii=False).encode("utf-8"))
        self._txn.commit()
        self._env.sync(True)
        self._env.close()
        os.close(self._lock)
        return replace_folder(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._txn.abort()
            self._env.close()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
        os.close(self._lock)

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _last_index(txn, prefix: bytes) -> int:
    """The highest ``N`` of the keys ``prefix + %09d`` (0 if none): keys are sorted, so one cursor step."""
    cur = txn.cursor()
    if not cur.set_range(prefix + b"\xff"):
        if not cur.last():
            return 0
    elif not cur.prev():
        return 0
    key = bytes(cur.key())
    while key.startswith(prefix):
        tail = key[len(prefix):]
        if len(tail) == 9 and tail.isdigit():
            return int(tail)
        if not cur.prev():
            break
        key = bytes(cur.key())
    return 0


class LmdbReader:
    """Random access to a prepared LMDB dataset; safe to use from loader workers.

    The environment is opened read-only, without locking, once per process.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._resolved = str(self.path.resolve())  # the dataset opened here, even if the cwd changes later
        with _read_env(self.path, self._resolved).begin() as txn:
            raw = txn.get(b"num-samples")
            if raw is None:
                raise ValueError(f"{self.path}: LMDB has no 'num-samples' key, so it is not a text-recognition dataset")
            try:
                self.num_samples = max(0, int(bytes(raw)))
            except ValueError:
                raise ValueError(f"{self.path}: LMDB 'num-samples' is not a number ({bytes(raw)[:20]!r})") from None
            entries = _read_env(self.path, self._resolved).stat()["entries"]
            if self.num_samples > entries:
                raise ValueError(f"{self.path}: LMDB 'num-samples' says {self.num_samples} but the database holds "
                                 f"only {entries} entries; it is damaged")
            last = max(_last_index(txn, b"image-"), _last_index(txn, b"label-"))
            if last < self.num_samples:
                raise ValueError(f"{self.path}: LMDB 'num-samples' says {self.num_samples} but the last sample "
                                 f"present is #{last}, so {self.num_samples - last} are missing; it was cut short "
                                 "or its 'num-samples' is wrong")
            meta = txn.get(META_KEY)
        try:
            self.meta: dict[str, Any] = json.loads(meta) if meta else {}
        except ValueError:  # another tool's or a damaged 'crnn-meta': the samples are still usable
            self.meta = {}
        if not isinstance(self.meta, dict):
            self.meta = {}

    def _txn_env(self) -> lmdb.Environment:
        return _read_env(self.path, self._resolved)

    def __len__(self) -> int:
        return self.num_samples

    def label(self, index: int) -> str:
        """Label of sample ``index`` (0-based); KeyError if missing, UnicodeDecodeError if not UTF-8."""
        key = b"label-%09d" % (index + 1)
        with self._txn_env().begin() as txn:
            raw = txn.get(key)
            if raw is None:
                raise KeyError(key.decode())
            return bytes(raw).decode("utf-8")

    def image_bytes(self, index: int) -> bytes:
        """Encoded image of sample ``index`` (0-based); KeyError if missing."""
        key = b"image-%09d" % (index + 1)
        with self._txn_env().begin() as txn:
            raw = txn.get(key)
            if raw is None:
                raise KeyError(key.decode())
            return bytes(raw)
