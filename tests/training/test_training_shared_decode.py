"""The processes of a machine decode the training images together, once, and share them (``--nproc N``)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.data.sources import open_source
from crnn.training.data_setup import load_dataset

SCRIPT = r'''
import json, sys
from pathlib import Path
from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.data.sources import open_source
from crnn.errors import CrnnError, DataError
from crnn.training.data_setup import decode_share
from crnn.training.distributed import context
from crnn.training.shared_decode import decode_together

mode, data, out = sys.argv[1:]
ctx = context()
cs, pre = Charset("abc"), Preprocess(height=16)
decoded = []

def decode(src, share, of, store):
    decoded.append(sorted(r.name for r in src.records[share::of]))
    if share == 1 and mode == "fail":
        raise DataError(f"{src.location}: cannot be read (a broken disk)")
    if share == 1 and mode == "bug":
        raise RuntimeError("a bug")
    return decode_share(src, pre, cs, lambda w: w // 4, None, share, of, store)

try:
    (ds,), (report,) = decode_together(ctx, [open_source(data)], decode, cs)
    res = {"labels": ds.labels, "names": ds.names, "arrays": [a.tolist() for a in ds.arrays],
           "views": all(not a.flags.owndata for a in ds.arrays), "report": report.format(max_lines=20)}
except Exception as e:
    res = {"error": type(e).__name__, "message": str(e)}
res["decoded"] = decoded
Path(out, f"{ctx.rank}.json").write_text(json.dumps(res))
'''


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k, label in enumerate(["ab", "cab", "ba", "abc", "c", "bb", "ca", "zz"]):  # 'zz': outside the charset
        Image.fromarray(rng.integers(0, 256, (16, 20 + 6 * k), dtype=np.uint8)).save(d / f"{label}.png")
    (d / "acb.png").write_bytes(b"not an image")
    return d


def _run_two(tmp_path, folder, mode):
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
               "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(script), mode, str(folder), str(tmp_path)], env=env,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    return [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)], tmpdir


def test_two_processes_decode_half_each_and_both_get_what_one_process_reads(tmp_path, folder):
    results, tmpdir = _run_two(tmp_path, folder, "ok")
    alone = load_dataset(open_source(folder), Preprocess(height=16), Charset("abc"), lambda w: w // 4)
    shares = [r["decoded"][0] for r in results]
    assert (len(shares[0]), len(shares[1])) == (5, 4) and len(set(shares[0] + shares[1])) == 9  # half each
    for r in results:
        assert r["labels"] == alone.dataset.labels and r["names"] == alone.dataset.names
        assert r["arrays"] == [a.tolist() for a in alone.dataset.arrays]
        assert r["views"]  # mapped from the shared files, not private copies
        assert r["report"] == alone.report.format(max_lines=20)  # the same counts, reasons and skip order
    assert "2 skipped" in results[0]["report"]
    assert list(tmpdir.iterdir()) == []  # removed once both had it open


@pytest.mark.parametrize("mode", ["fail", "bug"])
def test_a_share_that_fails_stops_both_with_one_line(tmp_path, folder, mode):
    results, tmpdir = _run_two(tmp_path, folder, mode)
    if mode == "fail":  # bad input: both say the failing share's own line, and nothing is left behind
        assert results[0]["error"] == results[1]["error"] == "DataError"
        assert results[0]["message"] == results[1]["message"] and "a broken disk" in results[0]["message"]
        assert list(tmpdir.iterdir()) == []
    else:  # a bug: its traceback is that process's; the other does not wait for ever
        assert results[1]["error"] == "RuntimeError"
        assert results[0]["error"] == "CrnnError" and "stopped (RuntimeError)" in results[0]["message"]
        assert not list(tmpdir.glob("*/share-*/*"))  # no decoded images left behind
