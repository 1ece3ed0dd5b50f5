"""crnn.data.lmdb_store: LMDB datasets written here and by other tools, damaged or cut short."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import _png, error_line, one_error_line, render_text
from crnn.cli import main


def _lmdb(path: Path, entries: dict[bytes, bytes]) -> Path:
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, v in entries.items():
            txn.put(k, v)
    env.close()
    return path


def test_damaged_lmdb_from_another_tool(tmp_path, capsys):
    img = _png(render_text("AB"))
    db = _lmdb(tmp_path / "other.lmdb", {
        b"num-samples": b"5", b"crnn-meta": b"{not json",
        b"image-000000001": img, b"label-000000001": b"AB",
        b"image-000000002": img,                                       # label missing
        b"image-000000003": img, b"label-000000003": b"caf\xe9",       # label not UTF-8
        b"label-000000004": b"BA",                                     # image missing
        b"image-000000005": b"junk", b"label-000000005": b"A\x07",     # control character in the label
    })
    assert main(["prepare", str(db), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    for n, reason in ((2, "label missing from the LMDB dataset"), (3, "label is not valid UTF-8"),
                      (4, "image missing from the LMDB dataset"), (5, "label contains a control")):
        assert f"{db}#{n}: {reason}" in out, out
    assert "1 usable samples of 5, 4 skipped" in out
    for raw, expect in ((b"lots", "'num-samples' is not a number"), (b"999999", "the database holds only")):
        bad = _lmdb(tmp_path / f"bad{len(raw)}.lmdb", {b"num-samples": raw, b"image-000000001": img})
        assert main(["prepare", str(bad), str(tmp_path / "o2.lmdb")]) == 2
        line = error_line(capsys.readouterr().err)
        assert str(bad) in line and expect in line


def test_lmdb_with_fewer_samples_than_num_samples_is_an_error(model_file, tmp_path, capsys):
    import lmdb

    img = tmp_path / "AB.png"
    render_text("AB").save(img)
    db = tmp_path / "cut.lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"100")
        for i in range(1, 51):
            txn.put(b"image-%09d" % i, img.read_bytes())
            txn.put(b"label-%09d" % i, b"AB")
    env.close()
    for command in (["eval", str(model_file), str(db)], ["prepare", str(db), str(tmp_path / "o.lmdb")]):
        assert main(command) == 2
        err = one_error_line(capsys.readouterr().err)
        assert str(db) in err and "says 100 but the last sample present is #50, so 50 are missing" in err


def test_lmdb_map_grows_with_the_data(tmp_path):

    from crnn.data.lmdb_store import LmdbReader, LmdbWriter

    blobs = [os.urandom(300_000) for _ in range(12)]  # 3.6 MB into a map that starts at 1 MiB
    with LmdbWriter(tmp_path / "g.lmdb", map_size=1 << 20) as w:
        for b in blobs:
            w.add(b, "AB")
    r = LmdbReader(tmp_path / "g.lmdb")
    assert len(r) == 12 and r.image_bytes(11) == blobs[11]


def test_lmdb_map_grows_for_values_just_over_a_page(tmp_path):
    """A value a little over a page takes two overflow pages of its own, twice its bytes: 80,000 synthetic
    words of ~8 KB filled a map sized at 1.25x their bytes (MDB_MAP_FULL at 65,800 of them). Scaled down:
    10,500 values of 4,100 bytes need 86 MB, where 1.25x their bytes stayed under a 64 MiB map."""
    from crnn.data.lmdb_store import LmdbReader, LmdbWriter

    blob = os.urandom(4100)
    with LmdbWriter(tmp_path / "p.lmdb", map_size=1 << 20) as w:
        for i in range(10_500):
            w.add(i.to_bytes(4, "big") + blob[4:], "AB")
    r = LmdbReader(tmp_path / "p.lmdb")
    assert len(r) == 10_500 and r.image_bytes(10_499)[:4] == (10_499).to_bytes(4, "big")


def test_lmdb_reader_keeps_reading_the_dataset_it_opened_after_a_chdir(tmp_path, monkeypatch):
    """The reader resolves its path once: a relative path still means the dataset it opened, not one of the
    same name under a later working directory (and each read no longer pays for resolving it)."""
    from crnn.data.lmdb_store import LmdbReader, LmdbWriter

    for folder, label in (("a", "FIRST"), ("b", "OTHER")):
        (tmp_path / folder).mkdir()
        with LmdbWriter(tmp_path / folder / "d.lmdb") as w:
            w.add(b"x", label)
    monkeypatch.chdir(tmp_path / "a")
    r = LmdbReader("d.lmdb")
    monkeypatch.chdir(tmp_path / "b")
    assert r.label(0) == "FIRST"
    assert LmdbReader("d.lmdb").label(0) == "OTHER"
