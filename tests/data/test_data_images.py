"""Sources, image decoding, preprocessing, validation reports and LMDB preparation."""

import io
import json
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from conftest import render_text
from crnn.data.images import Preprocess, load_image, normalize_batch, preprocess_image
from crnn.data.prepare import prepare
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples
from crnn.errors import DataError


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_folder_labels_from_stems_and_subfolders(tmp_path):
    render_text("HELLO").save(tmp_path / "HELLO.png")
    (tmp_path / "sub").mkdir()
    render_text("Fire-ball").save(tmp_path / "sub" / "Fire-ball.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path)
    assert sorted(r.label for r in src.records) == ["Fire-ball", "HELLO"]
    assert len(src.skipped) == 1 and "not an image" in src.skipped[0][1]


def test_label_pattern(tmp_path):
    render_text("AB").save(tmp_path / "AB_1.png")
    render_text("AB").save(tmp_path / "AB_2.png")
    render_text("Q").save(tmp_path / "odd.png")
    src = open_source(tmp_path, r"(.+)_\d+")
    assert [r.label for r in src.records] == ["AB", "AB"]
    assert "label-pattern" in src.skipped[0][1]
    with pytest.raises(DataError, match="group"):
        open_source(tmp_path, r".+")


def test_labels_file(tmp_path):
    (tmp_path / "img").mkdir()
    render_text("one").save(tmp_path / "img" / "a.png")
    render_text("two words").save(tmp_path / "img" / "b.png")
    (tmp_path / "outside.png").write_bytes(_png(render_text("x")))
    root = tmp_path / "data"
    root.mkdir()
    (root / "img").symlink_to(tmp_path / "img")
    (root / "labels.tsv").write_text(
        "img/a.png\tone\textra column\n"
        "img/b.png\ttwo words\n"
        "img/missing.png\tgone\n"
        "../outside.png\tx\n"
        "img/a.png\n"
        "img/a.png\t   \n", encoding="utf-8")
    src = open_source(root)  # the folder's labels.tsv is used
    assert [r.label for r in src.records] == ["one", "two words"]
    reasons = " | ".join(r for _, r in src.skipped)
    assert "file not found" in reasons and "outside the data folder" in reasons
    assert "no TAB" in reasons and "empty label" in reasons
    assert all(":" in name for name, _ in src.skipped)  # file:line


def test_labels_file_bad_encoding_names_the_line(tmp_path):
    (tmp_path / "gt.txt").write_bytes(b"a.png\tok\nb.png\t\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"gt.txt: line 2 .*UTF-8"):
        open_source(tmp_path / "gt.txt")


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="empty"):
        open_source(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        open_source(tmp_path / "nope")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_pillow_mode_becomes_a_valid_array(mode):
    base = render_text("Ab", height=40).convert("RGB")
    img = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    pre = Preprocess(height=32)
    a = preprocess_image(_png(img) if mode not in ("F", "CMYK", "I") else img, pre)
    assert a.dtype == np.uint8 and a.shape[0] == 32 and a.ndim == 2
    assert a.min() < 100 and a.max() > 150  # the text survived the conversion


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("L", (100, 20), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (20, 100)


def test_extreme_sizes_and_widths():
    pre = Preprocess(height=32, min_width=16)
    assert preprocess_image(np.zeros((1, 1), np.uint8), pre).shape == (32, 32)
    assert preprocess_image(np.zeros((200, 3), np.uint8), pre).shape == (32, 16)
    assert preprocess_image(np.zeros((20, 20000), np.uint8), pre).shape == (32, 32000)  # full width, never squeezed
    assert preprocess_image(np.zeros((60, 160, 3), np.uint8), Preprocess(height=32, channels=3)).shape == (32, 85, 3)
    with pytest.raises(DataError, match="over the 65,536 px limit"):
        preprocess_image(np.zeros((1, 4000), np.uint8), pre)  # 128,000 px at height 32


def test_narrow_images_are_padded_not_stretched():
    """A narrow glyph keeps its shape: the image is resized to the height, then padded with its last column."""
    a = np.full((32, 4), 255, np.uint8)
    a[:, 0] = 0  # a black left column, white elsewhere
    out = preprocess_image(a, Preprocess(height=32, min_width=16))
    assert out.shape == (32, 16)
    assert (out[:, 0] == 0).all() and (out[:, 1:] == 255).all()  # stretching would have widened the black bar


def test_bad_files_get_one_line_errors(tmp_path):
    good = _png(render_text("A"))
    cases = {"trunc.png": good[: len(good) // 2], "text.png": b"hello world", "zero.png": b"",
             "doc.jpg": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as e:
            load_image(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)


def test_decompression_bomb_refused(tmp_path):
    Image.new("1", (12000, 12000)).save(tmp_path / "bomb.png")
    with pytest.raises(DataError, match="decompression bomb"):
        load_image(tmp_path / "bomb.png", max_pixels=40_000_000 // 1000)


def test_normalize_batch_pads_with_last_column():
    a = np.full((4, 3), 255, np.uint8)
    b = np.zeros((4, 5), np.uint8)
    x, w = normalize_batch([a, b], 1)
    assert x.shape == (2, 1, 4, 5) and list(w) == [3, 5]
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)


def test_check_samples_reports_reasons(tmp_path):
    from crnn.charset import Charset

    render_text("AB").save(tmp_path / "AB.png")
    render_text("AZ").save(tmp_path / "AZ.png")
    (tmp_path / "BA.png").write_bytes(b"junk")
    report = Report("x")
    kept = list(check_samples(open_source(tmp_path), Preprocess(), Charset("AB"), report))
    assert [k.label for k in kept] == ["AB"]
    assert report.total == 3 and report.kept == 1 and report.unknown_chars == {"Z": 1}
    text = report.format()
    assert "not an image" in text and "'Z'" in text


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
