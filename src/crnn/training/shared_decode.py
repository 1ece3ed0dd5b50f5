"""Decode the training set once per machine, together, when several processes train (``--nproc N``, torchrun).

Every process takes its share of every batch, so every process needs every image. Each used to decode all of
them into its own memory: N copies (11 GB in each of two processes for the 391,000 samples of ``builtin:en``'s
stage 14) and N times the work. Here the N processes of a machine each decode 1/N of every source into a
store in the system's temporary folder (``TMPDIR``), wait for each other, and all map every store
(:mod:`crnn.data.decoded_store`) in the records' order, so the images sit once in the page cache and the
start takes 1/N of the time. The folder is removed as soon as all have it open.

The processes wait on marker files, not on a collective, so decoding may take longer than the process
group's timeout. A share that fails with bad input makes every process raise its one-line error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from crnn.charset import Charset
from crnn.data.dataset import TextLineDataset
from crnn.data.decoded_store import open_stores
from crnn.data.sources import Source
from crnn.data.validate import Report
from crnn.errors import ConfigError, CrnnError, DataError, ModelFileError
from crnn.training.distributed import DistContext, barrier

DecodeShare = Callable[[Source, int, int, Path], Report]
"""``(source, share, of, store) -> report``: decode records ``share::of`` of ``source`` into a store."""

POLL_S = 0.2
_ERRORS: dict[str, type[CrnnError]] = {c.__name__: c for c in (CrnnError, DataError, ConfigError, ModelFileError)}


def shared_folder(ctx: DistContext) -> Path:
    """The same new folder name on every process of a run (its token comes from rank 0)."""
    token = [uuid.uuid4().hex if ctx.rank == 0 else None]
    if ctx.distributed:
        dist.broadcast_object_list(token, src=0)
    return Path(tempfile.gettempdir()) / f"crnn-decoded-{token[0]}"


def machine_size(ctx: DistContext) -> int:
    """How many processes share this machine (torchrun's ``LOCAL_WORLD_SIZE``)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world))


def decode_together(ctx: DistContext, sources: list[Source], decode: DecodeShare, charset: Charset
                    ) -> tuple[list[TextLineDataset], list[Report]]:
    """Every source decoded by the processes of this machine together; each process gets all of it, mapped.

    Returns one dataset and one report (the shares' merged) per source, the same on every process. Each
    process ends its share with a marker, ``done-S`` or ``failed-S``; once every share has one, all read
    them, meet, and the folder is removed. Only a process stopped by a bug or Ctrl-C leaves without the
    others (its marker says so and they raise at once; the folder stays behind)."""
    folder = shared_folder(ctx)
    share, of = ctx.local_rank, machine_size(ctx)
    mine = folder / f"share-{share}"
    if share == 0:
        folder.mkdir(parents=True)
    else:
        _wait_for(lambda: folder.is_dir())
    try:
        for k, src in enumerate(sources):
            report = decode(src, share, of, mine / str(k))
            (mine / str(k) / "report.json").write_text(json.dumps(report.to_state()), encoding="utf-8")
    except CrnnError as e:  # bad input, or no room in TMPDIR: every process says the same line
        shutil.rmtree(mine, ignore_errors=True)
        _mark(folder, f"failed-{share}", {"kind": type(e).__name__, "message": str(e), "meet": True})
    except BaseException as e:  # a bug or Ctrl-C: the others must not wait for ever
        shutil.rmtree(mine, ignore_errors=True)
        why = f"a process decoding the training data stopped ({type(e).__name__})"
        _mark(folder, f"failed-{share}", {"kind": "CrnnError", "message": why, "meet": False})
        raise
    else:
        _mark(folder, f"done-{share}", {})
    try:
        failure = _wait_for(lambda: all((folder / f"done-{s}").exists() or (folder / f"failed-{s}").exists()
                                        for s in range(of)), folder)
    except BaseException:  # another process left without waiting (or Ctrl-C here): leave no images behind
        shutil.rmtree(mine, ignore_errors=True)
        raise
    datasets, reports = [], []
    if failure is None:
        for k, src in enumerate(sources):
            shares = [folder / f"share-{s}" / str(k) for s in range(of)]
            datasets.append(open_stores(shares, charset))
            parts = [Report.from_state(json.loads((f / "report.json").read_text(encoding="utf-8"))) for f in shares]
            reports.append(Report.merged(parts, {r.name: i for i, r in enumerate(src.records)}))
    barrier(ctx)  # every process has its mappings, or has read why not: the names can go
    if share == 0:
        shutil.rmtree(folder, ignore_errors=True)
    if failure is not None:
        raise _ERRORS.get(failure["kind"], CrnnError)(failure["message"])
    return datasets, reports


def _wait_for(ready: Callable[[], bool], folder: Path | None = None) -> dict | None:
    """Poll until ``ready()``. With ``folder``: the first failure marker found there once ready (None if
    none); a marker of a process that left without waiting raises at once."""
    while True:
        done = ready()  # first: markers are only ever added, so all that made it true are read below
        failed = sorted(folder.glob("failed-*")) if folder is not None and folder.is_dir() else []
        failures = [json.loads(f.read_text(encoding="utf-8")) for f in failed]
        for failure in failures:
            if not failure["meet"]:
                raise _ERRORS.get(failure["kind"], CrnnError)(failure["message"])
        if done:
            return failures[0] if failures else None
        time.sleep(POLL_S)


def _mark(folder: Path, name: str, content: dict) -> None:
    """Write a marker whole or not at all (a waiting process never reads half of one)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(content), encoding="utf-8")
    tmp.replace(folder / name)
