"""Atomic file replacement: the one way this toolkit writes a file that something else may be reading.

Checkpoints, exported models and training curves are written to a temporary file
in the same folder, flushed to disk, then renamed over the target, so a crash, a
kill or a full disk leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from crnn.errors import CrnnError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale temporary files are then removed unconditionally
    fcntl = None  # type: ignore[assignment]


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object] | None = None,
                 write_path: Callable[[Path], None] | None = None) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path`` (or ``write_path(tmp_path)``, for writers
    that open the file themselves), fsync it, and rename it to ``path``.

    The new file gets the usual permissions (``0o666`` less the umask; ``mkstemp``
    alone would make it 0600). Temporary files left by an earlier process that was
    killed mid-write are removed after a successful write; the writer holds an
    ``flock`` on its temporary file until the rename, so a temporary file that another
    live process is still writing is never taken for a stale one.
    """
    path = Path(path)
    if path.is_dir():
        raise CrnnError(f"{path}: is a folder; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    lock_fd = os.open(tmp, os.O_RDONLY)  # its own open file, so the lock outlives `fd` until the rename
    if fcntl is not None:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        if write_path is not None:
            os.close(fd)
            write_path(Path(tmp))
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            assert write is not None, "atomic_write needs write or write_path"
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(lock_fd)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        remove_if_unlocked(stale)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems refuse fsync on folders; the rename is still atomic
        pass
    return path


def remove_if_unlocked(path: Path) -> bool:
    """Remove a temporary file or folder left by a killed writer; one a live process holds stays.

    A live writer holds an ``flock`` on it (the kernel drops it when the process dies). Returns
    whether ``path`` was removed.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return not path.exists()
    except OSError:
        return False
    finally:
        os.close(fd)


def check_output_folder(path: str | os.PathLike, what: str = "output") -> None:
    """Fail early, in one line, if ``path`` cannot become a folder because a file is in the way.

    Called before long work (loading data, rendering images), so a typo in ``--out``
    costs a second, not the minutes of work done before the first write.
    """
    message = folder_blocked(path, what)
    if message is not None:
        raise CrnnError(message)


def folder_blocked(path: str | os.PathLike, what: str = "output") -> str | None:
    """Why ``path`` cannot be (or be made) a folder, naming the file in the way; None if it can."""
    p = Path(path)
    q = file_in_the_way(p)
    if q is None:
        return None
    return f"{q}: is a file, but the {what} needs a folder there" + ("" if q == p else f" (needed for {p})")


def file_in_the_way(folder: str | os.PathLike) -> Path | None:
    """The nearest existing path at or above ``folder`` if it is not a folder, else None."""
    p = Path(folder)
    for q in (p, *p.parents):
        if q.exists():
            return None if q.is_dir() else q
    return None


def check_output_parent(path: str | os.PathLike, what: str = "output") -> None:
    """Like :func:`check_output_folder`, for the folder that will hold the file ``path``."""
    check_output_folder(Path(path).parent, what)


def replace_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Put the finished folder ``tmp`` at ``dest``; an existing ``dest`` is moved to ``dest.old`` first and
    removed only once the new folder is in place, so a crash leaves the old folder or the new one."""
    tmp, dest = Path(tmp), Path(dest)
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    return dest
