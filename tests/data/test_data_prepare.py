"""crnn.data.prepare: ``crnn prepare`` writes a standard LMDB and a report, and never loses data."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from PIL import Image

from conftest import error_line, one_line_per_file, render_text
from crnn.cli import main
from crnn.data.prepare import prepare
from crnn.data.sources import open_source
from crnn.errors import DataError


def test_prepare_writes_standard_lmdb_and_report(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for t in ["AB", "B-A", "AAB", "A", "BB", "AB7"]:
        render_text(t).save(src / f"{t}.png")
    (src / "dup").mkdir()
    (src / "dup" / "AB.png").write_bytes((src / "AB.png").read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "data.lmdb"
    report = prepare(src, out, charset="AB-")
    assert report.kept == 5  # AB7 (unknown char), the duplicate and the broken file are skipped
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        assert int(txn.get(b"num-samples")) == 5
        labels = {txn.get(b"label-%09d" % i).decode() for i in range(1, 6)}
        assert labels == {"AB", "B-A", "AAB", "A", "BB"}
        Image.open(io.BytesIO(txn.get(b"image-000000001"))).verify()
        meta = json.loads(txn.get(b"crnn-meta"))
    env.close()
    assert meta["charset"] == "AB-" and meta["height"] == 32
    rep = json.loads((out / "report.json").read_text())
    assert rep["skipped"] == 3 and "duplicate of" in json.dumps(rep)
    # an LMDB is itself a source
    assert sorted(r.label for r in open_source(out).records) == sorted(labels)


def test_prepare_keeps_every_sample_not_a_batch_multiple(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for t in ["A", "B", "AB", "BA", "AAA", "BBB", "ABA"]:
        render_text(t).save(src / f"{t}.png")
    assert prepare(src, tmp_path / "o.lmdb").kept == 7


def test_prepare_never_destroys_existing_output(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    render_text("A").save(src / "A.png")
    out = tmp_path / "o.lmdb"
    prepare(src, out)
    before = (out / "data.mdb").read_bytes()
    with pytest.raises(DataError, match="already exists"):
        prepare(src, out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "X.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable sample"):
        prepare(bad, out, force=True)
    assert (out / "data.mdb").read_bytes() == before
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".o.lmdb")]  # no temp litter


CHARSET = "-7ABx"


def test_prepare_skips_counts_and_lists_every_bad_file(zoo, tmp_path, capsys):
    out = tmp_path / "zoo.lmdb"
    assert main(["prepare", str(zoo["root"]), str(out), f"--charset={CHARSET}"]) == 0
    text = capsys.readouterr().out
    bad = zoo["bad"]
    one_line_per_file(text, list(bad.values()) + [zoo["duplicate"]])
    lines = {name: next(ln for ln in text.splitlines() if ln.strip().startswith(name)) for name in bad.values()}
    assert "truncated or corrupt image" in lines[bad["truncated"]]
    assert "not an image" in lines[bad["not an image"]] and "not an image" in lines[bad["PDF as JPEG"]]
    assert "empty file (0 bytes)" in lines[bad["empty file"]]
    assert "decompression bomb" in lines[bad["bomb (header)"]]
    assert "decompression bomb" in lines[bad["bomb (pixels)"]] and "not loaded" in lines[bad["bomb (pixels)"]]
    assert "outside the charset" in lines[bad["outside charset"]]
    assert "empty label" in lines[bad["empty label"]]
    assert "not an image file extension (.txt)" in lines[bad["not an image extension"]]
    assert f"{zoo['duplicate']}: duplicate of an earlier file: {zoo['root'] / 'AB.png'}" in text
    # the summary: kept/total, skips grouped by kind, unknown characters with counts; the wide image is kept
    assert "6 usable samples of 17, 11 skipped" in text
    assert "characters outside the charset: 'Z' x3, 'q' x1" in text
    assert "squeeze" not in text and "xx.png" not in text  # kept, at full width: nothing to warn about
    report = json.loads((out / "report.json").read_text())
    assert report["kept"] == 6 and report["skipped"] == 11
    by_reason = report["skipped_by_reason"]
    assert by_reason["refused as a possible decompression bomb"] == 2
    assert by_reason["characters outside the charset"] == 2 and by_reason["duplicate of an earlier file"] == 1
    assert by_reason["not an image"] == 2 and report["unknown_chars"] == {"Z": 3, "q": 1}


def test_prepare_stops_when_nothing_is_usable(tmp_path, capsys):
    data = tmp_path / "junk"
    data.mkdir()
    (data / "A.png").write_bytes(b"")
    (data / "B.png").write_bytes(b"GIF89a broken")
    (data / "readme.md").write_text("hi")
    out = tmp_path / "o.lmdb"
    assert main(["prepare", str(data), str(out)]) == 2
    line = error_line(capsys.readouterr().err)
    assert str(data) in line and "no usable sample (3 skipped" in line and "nothing written" in line
    assert "empty file" in line and "not an image" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.lmdb")]


_PREPARE_AND_HANG = """
import sys, time
from crnn.data.lmdb_store import LmdbWriter
w = LmdbWriter(sys.argv[1])
w.add(b"half", "AB")
print(w._tmp, flush=True)
time.sleep(120)
"""


def test_a_killed_prepares_temp_folder_is_removed_by_the_next_but_a_live_ones_is_not(images, tmp_path, capsys):
    import signal

    out = tmp_path / "o.lmdb"
    live = subprocess.Popen([sys.executable, "-c", _PREPARE_AND_HANG, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        live_tmp = Path(live.stdout.readline().strip())
        assert live_tmp.is_dir() and live_tmp.name.startswith(".o.lmdb.")
        assert main(["prepare", str(images), str(out)]) == 0
        assert live_tmp.is_dir()  # another live prepare's work is left alone
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert main(["prepare", str(images), str(out), "--force"]) == 0
    capsys.readouterr()
    assert not live_tmp.exists()  # the killed one's is gone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.lmdb")] == []


def test_prepare_under_an_8_gib_address_space_limit(images, tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    out = tmp_path / "o.lmdb"
    r = subprocess.run([sys.executable, "-m", "crnn", "prepare", str(images), str(out)], preexec_fn=limit,
                       capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                         "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (out / "data.mdb").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.lmdb")] == []
