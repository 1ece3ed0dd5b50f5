"""Two processes on one machine decode the training images once and share them (``crnn train --nproc N``)."""

import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = r'''
import json, os, sys
from pathlib import Path
import numpy as np
from crnn.charset import Charset
from crnn.data.decoded_store import StoreWriter, open_store
from crnn.errors import CrnnError, DataError
from crnn.training.distributed import context
from crnn.training.shared_decode import decode_once

ctx = context()
cs = Charset("ab")
decoded_by = []

def decode(folder):
    decoded_by.append(ctx.rank)
    if sys.argv[1] == "fail":
        raise DataError("train/: no usable sample (2 skipped: 2 x not an image)")
    with StoreWriter(folder / "0") as w:
        for k in range(3):
            w.add(np.full((4, 5 + k), k, np.uint8), "ab"[: k % 2 + 1], f"{k}.png")
    return open_store(folder / "0", cs)

try:
    ds = decode_once(ctx, decode, lambda folder: open_store(folder / "0", cs))
    out = {"labels": ds.labels, "widths": ds.widths.tolist(), "first": ds.arrays[2].tolist(),
           "view": not ds.arrays[0].flags.owndata}
except CrnnError as e:
    out = {"error": type(e).__name__, "message": str(e)}
out["decoded_by"] = decoded_by
Path(sys.argv[2], f"{ctx.rank}.json").write_text(json.dumps(out))
'''


def _run_two(tmp_path, mode):
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT, encoding="utf-8")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmpdir), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(script), mode, str(tmp_path)], env=env,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    return [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)], tmpdir


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_the_first_process_decodes_both_map_it_and_nothing_is_left_in_tmpdir(tmp_path, mode):
    results, tmpdir = _run_two(tmp_path, mode)
    assert results[0]["decoded_by"] == [0] and results[1]["decoded_by"] == []  # decoded once, by local rank 0
    if mode == "ok":
        for r in results:
            assert r["labels"] == ["a", "ab", "a"] and r["widths"] == [5, 6, 7] and r["first"] == [[2] * 7] * 4
            assert r["view"]  # mapped from the shared file, not a private copy
    else:  # both say the decoding process's own one-line error
        assert results[0] == {**results[1], "decoded_by": [0]}
        assert results[1]["error"] == "DataError" and "no usable sample" in results[1]["message"]
    assert list(tmpdir.iterdir()) == []
