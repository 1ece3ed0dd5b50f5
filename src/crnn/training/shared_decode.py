"""Decode the training set once per machine when several processes train on it (``--nproc N``, torchrun).

Every process takes its share of every batch, so every process needs every image. Decoding them into each
process's memory multiplied the memory by N (11 GB in each of two processes for the 391,000 samples of
``builtin:en``'s stage 14). Here the first process of each machine (local rank 0) decodes into a store in
the system's temporary folder (``TMPDIR``), the others wait for it, all map the same file
(:mod:`crnn.data.decoded_store`), and the folder is removed as soon as all have it open. It takes the same
time as before (the processes used to decode the same images side by side) and one copy of the memory.

The others wait on a marker file, not on a collective, so decoding may take longer than the process
group's timeout. If the decoding process fails, the others raise the same one-line error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch.distributed as dist

from crnn.errors import ConfigError, CrnnError, DataError, ModelFileError
from crnn.training.distributed import DistContext, barrier

T = TypeVar("T")

DONE, FAILED = "done.json", "failed.json"
POLL_S = 0.2
_ERRORS: dict[str, type[CrnnError]] = {c.__name__: c for c in (CrnnError, DataError, ConfigError, ModelFileError)}


def shared_folder(ctx: DistContext) -> Path:
    """The same new folder name on every process of a run (its token comes from rank 0)."""
    token = [uuid.uuid4().hex if ctx.rank == 0 else None]
    if ctx.distributed:
        dist.broadcast_object_list(token, src=0)
    return Path(tempfile.gettempdir()) / f"crnn-decoded-{token[0]}"


def decode_once(ctx: DistContext, decode: Callable[[Path], T], open_decoded: Callable[[Path], T]) -> T:
    """``decode(folder)`` on the first process of each machine (it writes its stores under ``folder`` and
    returns what it read); ``open_decoded(folder)`` on the others once that is done. The folder is removed
    when every process has returned."""
    folder = shared_folder(ctx)
    if ctx.local_rank == 0:
        try:
            result = decode(folder)
        except CrnnError as e:  # bad input: every process says the same line, and nothing is left behind
            _fail(folder, type(e).__name__, str(e), meet=True)
            barrier(ctx)  # the others have read why
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except BaseException as e:  # a bug or Ctrl-C: the others must not wait for ever (a marker stays behind)
            _fail(folder, "CrnnError", f"the process decoding the training data stopped ({type(e).__name__})",
                  meet=False)
            raise
        (folder / DONE).write_text("{}", encoding="utf-8")
    else:
        while not (folder / DONE).exists():
            if (folder / FAILED).exists():
                failure = json.loads((folder / FAILED).read_text(encoding="utf-8"))
                if failure["meet"]:
                    barrier(ctx)
                raise _ERRORS.get(failure["kind"], CrnnError)(failure["message"])
            time.sleep(POLL_S)
        result = open_decoded(folder)
    barrier(ctx)  # every process has its mapping: the names can go
    if ctx.local_rank == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _fail(folder: Path, kind: str, message: str, meet: bool) -> None:
    """Tell the waiting processes why; ``meet``: the decoding process waits at a barrier until they have read it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (FAILED + ".tmp")
    tmp.write_text(json.dumps({"kind": kind, "message": message, "meet": meet}), encoding="utf-8")
    tmp.replace(folder / FAILED)  # never read half-written
