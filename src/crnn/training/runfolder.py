"""The run folder's owner: one training process at a time, nothing overwritten, resume on the same data.

Three rules, each of which a user lost work to before (issue 13):

- **One process per run folder.** ``RUN/.lock`` is held with ``fcntl.flock`` for the whole run. The
  kernel drops the lock when the process ends, however it ends, so a crashed or SIGKILLed run never
  leaves a folder stuck; a second ``crnn train`` into the same ``--out`` fails at once.
- **A model is never written over.** A folder that already holds ``best.pt``, ``last.pt``, ``train.log``
  or ``metrics.csv`` is only written into with ``--resume``, or with ``--force``, which first moves every
  old file into ``RUN/old-YYYYmmdd-HHMMSS/`` (kept, never deleted). A folder with the logs of a run that
  was killed before it saved any model has nothing to resume: it is started again as with ``--force``
  (the logs moved aside, and said). At each epoch's end ``last.pt`` is written before ``best.pt``, so a
  kill between the two leaves a run that resumes (and writes the missing ``best.pt``).
- **Resume continues the same run.** A :func:`fingerprint` of the data (locations, sample counts, bytes)
  is stored in every checkpoint; ``--resume`` on other data, or with a setting changed other than the
  budget (``train.epochs``, ``train.time_budget``) and bookkeeping (:data:`RESUME_MAY_CHANGE`), is
  refused with one line that names the difference, because the validation split and ``best.pt`` would
  otherwise silently change meaning.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from crnn.errors import ConfigError, CrnnError
from crnn.fileio import remove_if_unlocked

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, the other rules still hold
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
RUN_RECORDS = ("best.pt", "last.pt", "train.log", "metrics.csv")
"""What makes a folder a run: a model, or the records of one."""
RESUME_MAY_CHANGE = frozenset({"train.epochs", "train.time_budget", "train.checkpoint_every", "train.log_every",
                               "train.tensorboard", "train.device", "data.workers"})
"""What a resumed run may set anew: its budget, and bookkeeping that does not change what is learned."""


class RunFolder:
    """The hold of one training process on its run folder (a context manager).

    >>> with RunFolder("runs/exp1", resume=False, force=False) as folder:   # doctest: +SKIP
    ...     ...                       # read data, build the model: nothing is written yet
    ...     folder.start_writing()    # moves old files aside under --force; then write logs and checkpoints

    ``enabled=False`` (non-zero DDP ranks, which never write) makes every step a no-op. If the run
    fails before :meth:`start_writing`, a folder this process created is removed again, so a typo in
    the data path leaves nothing behind.
    """

    def __init__(self, path: str | os.PathLike, resume: bool, force: bool, enabled: bool = True):
        self.path = Path(path)
        self.resume, self.force, self.enabled = resume, force, enabled
        self.created = False
        self.writing = False
        self.moved_to: Path | None = None
        self.restarting = False
        """The folder held only the logs of a run that saved no model (killed in its first steps): it is
        started again as with ``--force``, the old logs moved into ``old-TIMESTAMP/``."""
        self._fd: int | None = None

    def __enter__(self) -> RunFolder:
        if not self.enabled:
            return self
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        held = self.records()
        self.restarting = bool(held) and not self.resume and not self.force and not self.models()
        if self.restarting:  # a run killed before it saved a model: nothing to resume, its logs are kept aside
            self.force = True
        if held and not self.resume and not self.force:
            self.__exit__(None, None, None)
            raise CrnnError(f"{self.path}: already holds a run ({', '.join(held)}); use --resume to continue it, "
                            "--force to start over (the old files are moved into old-TIMESTAMP/ there), or "
                            "another --out")
        return self

    def records(self) -> list[str]:
        return [n for n in RUN_RECORDS if (self.path / n).exists()]

    def models(self) -> list[str]:
        """The model files of the run in the folder (``best.pt``, ``last.pt``)."""
        return [n for n in self.records() if n.endswith(".pt")]

    def _lock(self) -> None:
        if fcntl is None:
            return
        lock = self.path / LOCK_NAME
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise CrnnError(f"{self.path}: another crnn train (pid {owner}) is writing into this run folder; "
                                "wait for it to end, or use another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file that its owner removed while we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def start_writing(self) -> Path | None:
        """Called just before the first write; under ``--force`` moves an old run aside. Returns where to.

        First it removes the temporary files a killed writer left (``.best.pt.*.tmp``): ``atomic_write`` sweeps
        those of a file only when it writes that file again, and a resumed run need not write ``best.pt`` again.
        The folder's lock is held, and :func:`remove_if_unlocked` keeps any file a live writer still holds.
        """
        if not self.enabled or self.writing:
            return self.moved_to
        self.writing = True
        for stale in sorted(self.path.glob(".*.tmp")):
            remove_if_unlocked(stale)
        if self.force and not self.resume and self.records():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            dest = self.path / f"old-{stamp}"
            n = 1
            while dest.exists():
                n += 1
                dest = self.path / f"old-{stamp}-{n}"
            dest.mkdir()
            for entry in sorted(self.path.iterdir()):
                if entry.name == LOCK_NAME or entry == dest or (entry.is_dir() and entry.name.startswith("old-")):
                    continue
                os.replace(entry, dest / entry.name)
            self.moved_to = dest
        return self.moved_to

    def __exit__(self, *exc) -> None:
        if not self.enabled or self._fd is None and not self.created:
            return
        if self.created and not self.writing:
            # Nothing was written: leave no folder behind. The lock file goes while still held, and a
            # process that opened it meanwhile sees it was removed (the inode check in _lock).
            try:
                (self.path / LOCK_NAME).unlink(missing_ok=True)
                self.path.rmdir()
            except OSError:
                pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# -- what a run was started with -------------------------------------------------------------------------------


def describe_source(location: str, source=None) -> dict[str, Any]:
    """One training or validation input: where it is, how many samples it lists, how many bytes they hold."""
    if source is None:  # synth:CONFIG: the config's own bytes decide what is rendered
        cfg = str(location).split(":", 1)[1] if ":" in str(location) else str(location)
        try:
            digest = hashlib.sha256(Path(cfg).read_bytes()).hexdigest()[:16]
        except OSError:
            digest = "?"
        return {"location": str(location), "kind": "synth", "config_sha256": digest}
    total = 0
    for rec in source.records:
        if rec.path is not None:
            try:
                total += rec.path.stat().st_size
            except OSError:
                pass
    if source.kind == "lmdb":
        total = (Path(source.location) / "data.mdb").stat().st_size
    return {"location": str(Path(source.location).resolve()), "kind": source.kind,
            "samples": len(source.records) + len(source.skipped), "bytes": total}


def fingerprint(train: list[dict[str, Any]], val: dict[str, Any] | None) -> dict[str, Any]:
    """What :func:`check_resume` compares the new inputs with (saved in every checkpoint as ``run``)."""
    return {"train": train, "val": val}


def _what(d: dict[str, Any] | None) -> str:
    if d is None:
        return "none (held out from --train)"
    if d.get("kind") == "synth":
        return f"{d['location']} (config sha256 {d['config_sha256']})"
    return f"{d['location']} ({d['samples']} samples, {d['bytes']:,} bytes)"


def check_resume(saved: dict[str, Any] | None, now: dict[str, Any], saved_config: dict[str, Any],
                 asked: dict[str, Any], explicit: set[str], where: Path) -> None:
    """Refuse a resume whose data or settings differ from the run's, naming the first difference.

    ``asked`` is the config the user gave now (as a dict) and ``explicit`` the keys they set in it
    (a config file, ``--set``, a flag): only those are compared, since a plain ``--resume`` leaves the
    rest at their defaults and means "the run's own settings".
    """
    for key in sorted(explicit - RESUME_MAY_CHANGE):
        sec, _, name = key.partition(".")
        old, new = saved_config.get(sec, {}).get(name), asked.get(sec, {}).get(name)
        if new != old:
            raise ConfigError(f"--resume: {key}={new!r} differs from the run's {old!r} ({where / 'config.toml'}); "
                              "a resumed run keeps its settings, but for its budget (train.epochs, train.time_budget) "
                              "and bookkeeping")
    if not saved:
        return  # a checkpoint from before fingerprints: nothing to compare
    if len(saved["train"]) != len(now["train"]):
        raise CrnnError(f"--resume: {where} was trained on {len(saved['train'])} --train input(s), now "
                        f"{len(now['train'])}; resume with the same --train, or start a new run with another --out")
    for old, new in zip(saved["train"], now["train"]):
        if old != new:
            raise CrnnError(f"--resume: the training data differ from the run's: was {_what(old)}, now "
                            f"{_what(new)}; resume with the same --train, or start a new run with another --out")
    if saved["val"] != now["val"]:
        raise CrnnError(f"--resume: the validation data differ from the run's: was {_what(saved['val'])}, now "
                        f"{_what(now['val'])}; best.pt is chosen on it, so resume with the same --val")
