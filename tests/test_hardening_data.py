"""Bad data, clear words: every kind of broken input, through the real entry points.

Each bad sample must give one line that names the file and the reason; the run goes
on where it can (skip and count, listed in the summary) and stops with one line
(exit status 2) where nothing is usable. The cases and their outcomes are tabulated
in RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_toy_set, render_text
from crnn.checkpoint import save_checkpoint
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.data.images import Preprocess, load_image
from crnn.errors import CrnnError
from crnn.models import build_model
from crnn.training.loop import train

CHARSET = "-7ABx"
TINY = ["data.height=32", "model.rnn_hidden=16", "train.batch_size=16", "train.log_every=1000", "augment.enabled=false"]


# ----------------------------------------------------------------------------------------------- helpers


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """A valid PNG of 8-bit grey pixels; only ``rows`` rows of pixel data follow the header."""
    raw = (b"\0" + b"\xff" * width) * rows if width * rows <= 100_000_000 else b"\0"
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def one_line_per_file(text: str, names: list[str]) -> None:
    """Each name appears on a line of its own that also says why."""
    lines = text.splitlines()
    for name in names:
        hits = [ln for ln in lines if name in ln]
        assert hits, f"{name} not mentioned in:\n{text}"
        assert any(": " in ln.split(name, 1)[1] for ln in hits), f"no reason given for {name}: {hits}"


def error_line(err: str) -> str:
    """The CLI's one-line error; no traceback."""
    err = err.strip()
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("error: "), err
    return last


def tiny_config(*extra: str) -> Config:
    return apply_overrides(Config(), TINY + ["train.epochs=1", "data.val_fraction=0", *extra])


# `model_file` (an untrained model over the toy alphabet) is in conftest.py


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict:
    """A folder of label-named images: some good, one of each kind of bad file."""
    root = tmp_path_factory.mktemp("zoo") / "data"
    root.mkdir()
    for text in ("AB", "BA", "7x", "A-B"):
        render_text(text).save(root / f"{text}.png")
    Image.new("L", (1, 1), 0).save(root / "A.png")                       # 1 x 1 pixel
    wide = Image.new("L", (20_000, 20), 255)
    wide.paste(0, (100, 5, 19_900, 15))
    wide.save(root / "xx.png")                                           # 20,000 x 20 pixels
    good = _png(render_text("B"))
    bad = {
        "truncated": ("B7.png", good[: len(good) // 2]),
        "not an image": ("AA.png", b"just some text, not pixels\n"),
        "empty file": ("BB.png", b""),
        "PDF as JPEG": ("x7.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n"),
        "bomb (header)": ("77.png", png_claiming(100_000, 100_000)),
        "bomb (pixels)": ("7A.png", png_claiming(10_000, 5_000, rows=5_000)),
        "outside charset": ("AZZ.png", _png(render_text("AZZ"))),
        "outside charset 2": ("Zq.png", _png(render_text("Zq"))),
        "empty label": (" .png", _png(render_text(" "))),
        "not an image extension": ("notes.txt", b"hello"),
    }
    for _, (name, data) in bad.items():
        (root / name).write_bytes(data)
    (root / "copy").mkdir()
    (root / "copy" / "AB.png").write_bytes((root / "AB.png").read_bytes())  # exact duplicate
    return {"root": root, "bad": {k: str(root / n) for k, (n, _) in bad.items()},
            "duplicate": str(root / "copy" / "AB.png")}


# ------------------------------------------------------------------------------------------ crnn prepare


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


@pytest.mark.parametrize("command", ["prepare", "train", "eval", "predict"])
def test_empty_and_missing_folders_stop_with_one_line(command, tmp_path, model_file, capsys):
    empty, missing, only_junk = tmp_path / "empty", tmp_path / "missing", tmp_path / "junk"
    empty.mkdir()
    only_junk.mkdir()
    (only_junk / "notes.txt").write_text("x")
    for data, expect in ((empty, "empty"), (missing, "no such file"), (only_junk, "no usable sample")):
        argv = {"prepare": ["prepare", str(data), str(tmp_path / "o.lmdb")],
                "train": ["train", "--train", str(data), "--out", str(tmp_path / "run"), "--no-progress"],
                "eval": ["eval", str(model_file), str(data)],
                "predict": ["predict", str(model_file), str(data)]}[command]
        capsys.readouterr()
        assert main(argv) == 2, (command, data)
        line = error_line(capsys.readouterr().err)
        if command == "predict":  # predict takes images, not a dataset
            expect = "no images found" if data != missing else "no such file"
        assert expect in line and (data.name in line), line
    assert not (tmp_path / "o.lmdb").exists() and not (tmp_path / "run" / "last.pt").exists()


# --------------------------------------------------------------------------------------------- labels file


def test_labels_file_problems_are_skipped_per_line(tmp_path, capsys):
    data = tmp_path / "d"
    (data / "img").mkdir(parents=True)
    for text in ("AB", "B7", "x"):
        render_text(text).save(data / "img" / f"{text}.png")
    (tmp_path / "secret.png").write_bytes(_png(render_text("A")))
    lines = [
        "img/AB.png\tAB",                       # 1 good
        "img/B7.png",                           # 2 no label column
        "img/nope.png\tA",                      # 3 file does not exist
        "../secret.png\tA",                     # 4 outside the data folder
        f"{tmp_path / 'secret.png'}\tA",        # 5 absolute path
        "img/x.png\t   ",                       # 6 empty label
        "img/x.png\tA\x07B",                    # 7 control character in the label
        "img/" + "y" * 5000 + ".png\tA",        # 8 name too long for the file system
        "\tA",                                  # 9 empty path
        "",                                     # blank line: ignored
        "img/B7.png\tB\x0b7",                   # 11 vertical tab: one line (not split), a control character
        "img/x.png\tx\u2028x",                  # 12 U+2028 inside a label does not split the line
    ]
    (data / "labels.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    f = data / "labels.tsv"
    expect = {2: "no TAB between path and label", 3: "file not found: img/nope.png",
              4: "path outside the data folder: ../secret.png", 5: "path outside the data folder",
              6: "empty label", 7: "label contains a control or undecodable character: \\x07",
              8: "cannot access the file", 9: "empty path", 11: "control or undecodable character: \\x0b"}
    for lineno, reason in expect.items():
        hit = [ln for ln in out.splitlines() if f"{f}:{lineno}: " in ln]
        assert len(hit) == 1 and reason in hit[0], (lineno, reason, out)
    assert "2 usable samples of 11, 9 skipped" in out
    assert not any(f"{f}:{n}:" in out for n in (1, 10, 12))


def test_labels_file_with_bad_encoding_names_file_and_line(tmp_path, model_file, capsys):
    data = tmp_path / "d"
    data.mkdir()
    render_text("AB").save(data / "a.png")
    (data / "gt.txt").write_bytes(b"a.png\tAB\na.png\tcaf\xe9\n")  # Latin-1, not UTF-8
    for argv in (["prepare", str(data), str(tmp_path / "o.lmdb")],
                 ["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress"],
                 ["eval", str(model_file), str(data / "gt.txt")]):
        capsys.readouterr()
        assert main(argv) == 2
        line = error_line(capsys.readouterr().err)
        assert f"{data / 'gt.txt'}: line 2 is not valid UTF-8" in line


def test_labels_file_with_every_line_bad_stops_before_training(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    (data / "labels.tsv").write_text("a.png\tA\nb.png\n../c.png\tC\n", encoding="utf-8")
    assert main(["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "labels.tsv: no usable sample (3 skipped: " in line
    assert "file not found" in line and "no TAB" in line and "outside the data folder" in line


def test_undecodable_and_control_characters_in_file_names(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    render_text("AB").save(data / "AB.png")
    render_text("A").save(os.fsdecode(os.fsencode(str(data)) + b"/A\xff.png"))  # not UTF-8
    render_text("B").save(data / "B\nB.png")                                    # a newline in the name
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    assert "A\\udcff.png: label contains a control or undecodable character" in out
    assert "B\\nB.png: label contains a control or undecodable character: \\n" in out
    assert "1 usable samples of 3, 2 skipped" in out
    json.loads((tmp_path / "o.lmdb" / "report.json").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------- training


def test_training_skips_bad_samples_and_explains_too_long_labels(tmp_path, monkeypatch):
    monkeypatch.setattr("crnn.training.loop._write_curves", lambda run: None)  # curves.png: seconds, not tested
    data = tmp_path / "d"
    labels = make_toy_set(data, 48, seed=3)
    render_text("A").crop((0, 0, 16, 32)).save(data / "narrow.png")  # 16 px -> 4 CTC frames
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    render_text("AZ").save(data / "z.png")
    Image.new("L", (1, 1), 255).save(data / "dot.png")
    Image.new("L", (20_000, 20), 255).save(data / "long.png")
    extra = ["narrow.png\tABABAB7", "broken.png\tAB", "z.png\tAZ", "dot.png\tA", "long.png\tABx", "gone.png\tA"]
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    messages: list[str] = []
    res = train(tiny_config(f"data.charset={CHARSET}"), data, tmp_path / "run", progress=False,
                log=messages.append)
    text = "\n".join(messages)
    assert f"49 usable samples of {len(labels) + 6}, 5 skipped" in text, text
    one_line_per_file(text, [str(data / "narrow.png"), str(data / "broken.png"), str(data / "z.png"),
                             str(data / "long.png"), f"{data / 'labels.tsv'}:{len(labels) + 6}"])
    long = next(ln for ln in text.splitlines() if "long.png" in ln)  # never squeezed: skipped, and said why
    assert "wider than data.max_width after resizing (32000 px at height 32, limit 4096" in long
    narrow = next(ln for ln in text.splitlines() if "narrow.png" in ln)
    assert "label too long for the image: 7 characters need 7 CTC frames but the image gives only 4" in narrow
    assert "characters outside the charset: 'Z' x1" in text
    row = res.history[-1]
    assert np.isfinite(row["train_loss"]) and row["train_loss"] > 0


def test_training_stops_when_every_label_is_too_long(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    for i in range(2):
        render_text("A").crop((0, 0, 12, 32)).save(data / f"{i}.png")
    (data / "labels.tsv").write_text("0.png\tABABAB\n1.png\t7x7x7x7\n", encoding="utf-8")
    argv = ["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress", "--epochs", "1"]
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    assert "no usable sample (2 skipped: 2 label too long for the image)" in line
    assert not (tmp_path / "r" / "last.pt").exists()


# ---------------------------------------------------------------------------------------- eval and predict


def test_eval_skips_and_reports_bad_files(zoo, model_file, capsys):
    assert main(["eval", str(model_file), str(zoo["root"])]) == 0
    out, err = capsys.readouterr()
    # eval keeps labels the model cannot spell (they count as errors) but lists the characters
    assert "9 samples, 8 skipped" in out
    assert "characters this model cannot output: 'Zq'" in out
    # grouped counts, then (the CLI shows up to 20: here all 8) examples, each one line naming its file
    for n, kind in ((2, "refused as a possible decompression bomb"), (2, "not an image"), (1, "empty file"),
                    (1, "truncated or corrupt image"), (1, "empty label"), (1, "not an image file extension")):
        assert f"skipped {n:6d} x {kind}\n" in err, (kind, err)
    examples = [ln.strip() for ln in err.splitlines() if ln.startswith("    ") and "more (see" not in ln]
    assert len(examples) == 8 and all(ln.startswith(str(zoo["root"])) and ": " in ln for ln in examples)


def _mode_image(mode: str) -> tuple[str, Image.Image]:
    """A 60 x 20 picture of text in ``mode`` and a file format that can hold that mode and EXIF."""
    base = render_text("AB").convert("RGB").resize((60, 20))
    img = base.convert("L").convert(mode) if mode in ("I;16", "I", "F") else base.convert(mode)
    return ("tiff" if mode in ("CMYK", "I", "F") else "png"), img


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_with_exif_rotation(mode, tmp_path):
    ext, img = _mode_image(mode)
    img.save(tmp_path / f"plain.{ext}")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    path = tmp_path / f"r.{ext}"
    img.save(path, exif=exif)
    assert Image.open(path).mode == mode
    out = load_image(path)
    assert out.size == (20, 60) and out.mode in ("L", "RGB")  # upright: the EXIF rotation was applied
    want = load_image(tmp_path / f"plain.{ext}").transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(np.asarray(out), np.asarray(want))  # ... to the right pixels
    a = np.asarray(out.convert("L"))
    assert a.min() < 100 and a.max() > 150  # the text survived


def test_predict_reads_every_mode_and_size_and_names_each_bad_file(zoo, model_file, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    names = []
    for mode in MODES:
        ext, img = _mode_image(mode)
        exif = Image.Exif()
        exif[0x0112] = 8
        name = f"mode_{mode.replace(';', '_')}.{ext}"
        img.save(imgs / name, exif=exif)
        names.append(str(imgs / name))
    names += [str(zoo["root"] / "A.png"), str(zoo["root"] / "xx.png")]  # 1 x 1 and 20,000 x 20
    bad = [zoo["bad"][k] for k in ("truncated", "not an image", "empty file", "PDF as JPEG", "bomb (header)",
                                   "bomb (pixels)")]
    assert main(["predict", str(model_file), *names, *bad, "--format", "tsv"]) == 1
    out, err = capsys.readouterr()
    rows = [ln.split("\t") for ln in out.strip().splitlines()]
    assert [r[0] for r in rows] == names and all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    err_lines = err.strip().splitlines()
    assert len(err_lines) == len(bad) + 1 and err_lines[-1] == f"{len(bad)} of {len(names) + len(bad)} images " \
                                                                "could not be read"
    for name, line in zip(bad, err_lines):
        assert line.startswith(f"error: {name}: ")


# ------------------------------------------------------------------------------------ decompression bombs


def test_decompression_bomb_is_refused_without_allocating(tmp_path):
    """In a fresh process capped at 1.5 GiB of address space: refused quickly, memory barely moves."""
    (tmp_path / "header.png").write_bytes(png_claiming(100_000, 100_000))      # would be 10 GB
    (tmp_path / "pixels.png").write_bytes(png_claiming(10_000, 5_000, rows=5_000))  # real data, 50 MB
    code = textwrap.dedent(f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        from crnn.data.images import Preprocess, preprocess_image
        from crnn.errors import DataError
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name in ("header.png", "pixels.png"):
            t = time.perf_counter()
            try:
                preprocess_image(r"{tmp_path}/" + name, Preprocess())
                print("LOADED", name)
            except DataError as e:
                print("REFUSED", round(time.perf_counter() - t, 3), e)
        print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["REFUSED", "REFUSED", "GROWTH_KB"], res.stdout
    for ln in lines[:2]:
        assert float(ln.split()[1]) < 1.0 and "decompression bomb" in ln
    assert int(lines[2].split()[1]) < 20_000  # KB: nowhere near the 50 MB (or 10 GB) the pixels would take


def test_bomb_limit_is_the_configured_one(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(3_000, 1_000, rows=1_000))
    assert load_image(path).size == (3_000, 1_000)
    with pytest.raises(CrnnError, match=r"big.png: refused as a possible decompression bomb \(3000x1000 pixels"):
        load_image(path, max_pixels=1_000_000)


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


# ---------------------------------------------------------------------- untrusted model files (eval, predict)
# tests/test_checkpoint.py covers: a __reduce__ payload in a checkpoint and a raw pickle, truncation at one
# point, random bytes, text, a bare state_dict, a newer format version, charset/output-layer mismatch, a
# missing file, a folder and an empty file. These add what it leaves out.


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _payload(**changes) -> dict:
    cfg = Config()
    cfg.model.rnn_hidden = 16
    model = build_model(cfg.model, len(CHARSET) + 1)
    p = {"format": "crnn-ocr-checkpoint", "version": 1, "config": cfg.to_dict(), "charset": CHARSET,
         "preprocess": Preprocess().to_dict(), "model": model.state_dict()}
    p.update(changes)
    return p


def _bad_model(kind: str, path: Path, marker: Path) -> None:
    import torch

    if kind == "evil legacy format":  # the pre-zip torch.save format, with code in it
        torch.save({**_payload(), "meta": _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "evil inside the weights":
        torch.save(_payload(model={"fc.weight": _Evil(marker)}), path)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    elif kind == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data.pkl", b"not a pickle")
    elif kind == "npy":
        np.save(path.open("wb"), np.zeros(10))
    elif kind == "version is text":
        torch.save(_payload(version="1"), path)
    elif kind == "model is a list":
        torch.save(_payload(model=[1, 2, 3]), path)
    elif kind == "charset is a number":
        torch.save(_payload(charset=5), path)
    elif kind == "charset has control chars":
        torch.save(_payload(charset="ab\x00\x01-"), path)
    elif kind == "config is garbage":
        torch.save(_payload(config={"model": {"bogus": 1}}), path)
    elif kind == "weights of another size":
        cfg = Config()
        cfg.model.rnn_hidden = 24
        torch.save(_payload(model=build_model(cfg.model, len(CHARSET) + 1).state_dict()), path)
    elif kind == "config claims a huge model":
        cfg = Config()
        cfg.model.rnn_hidden = 3_000_000  # ~100 GB of weights if built: must be refused before allocating
        torch.save(_payload(config=cfg.to_dict()), path)
    elif kind.startswith("truncated at "):
        save_checkpoint(path, _payload())
        data = path.read_bytes()
        cut = {"truncated at 1%": len(data) // 100, "truncated at 50%": len(data) // 2,
               "truncated at 99%": len(data) * 99 // 100, "truncated at -1 byte": len(data) - 1}[kind]
        path.write_bytes(data[:cut])


BAD_MODELS = {
    "evil legacy format": "refused", "evil inside the weights": "refused", "torchscript": "is a TorchScript program",
    "zip": "not a readable model", "npy": "not a readable model", "version is text": "not a number",
    "model is a list": "'model' is a list", "charset is a number": "'charset' is a int",
    "charset has control chars": "control character", "config is garbage": "config is not understood",
    "weights of another size": "weights do not fit", "config claims a huge model": "weights do not fit",
    "truncated at 1%": "not a readable model", "truncated at 50%": "not a readable model",
    "truncated at 99%": "not a readable model", "truncated at -1 byte": "not a readable model",
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_untrusted_model_files_are_refused_with_one_line(kind, tmp_path, capsys, monkeypatch):
    import resource
    import time

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    _bad_model(kind, path, marker)
    render_text("AB").save(tmp_path / "AB.png")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    for argv in (["predict", str(path), str(tmp_path / "AB.png")], ["eval", str(path), str(tmp_path)]):
        capsys.readouterr()
        assert main(argv) == 2, kind
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {path}: ") and BAD_MODELS[kind] in line, line
    assert not marker.exists()  # the payload never ran
    assert time.perf_counter() - t < 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KB: nothing huge was built


def test_writing_a_file_over_a_folder_names_the_folder(tmp_path):
    from crnn.fileio import atomic_write

    folder = tmp_path / "out"
    (folder / "keep").mkdir(parents=True)
    with pytest.raises(CrnnError, match="out: is a folder; give a file name"):
        atomic_write(folder, lambda f: f.write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (folder / "keep").is_dir()  # nothing left over
