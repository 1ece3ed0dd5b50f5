"""A long text line is read at its full width, never squeezed, through every entry point.

The shipped ``builtin:en`` reads this rendered 127-character line correctly at full width (about 2,000 px at
its 48 px height): squeezed to the old 512 px clamp it turns to garbage. So each entry
point that returns the exact text here proves it kept the aspect ratio.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from crnn import Recognizer
from crnn.cli import main
from crnn.data.images import Preprocess

TEXT = ("The quick brown fox jumps over the lazy dog 1234567890 times while the cat sat on the mat and read a book "
        "about birds and trees")  # 127 characters: squeezed to 512 px (128 CTC frames) it cannot even be spelled


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    font = ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans.ttf"), 28)
    img = Image.new("L", (int(font.getlength(TEXT)) + 20, 44), 255)
    ImageDraw.Draw(img).text((10, 6), TEXT, font=font, fill=0)
    folder = tmp_path_factory.mktemp("long")
    img.save(folder / "line.png")
    (folder / "labels.tsv").write_text(f"line.png\t{TEXT}\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return Recognizer.load("builtin:en")


def test_the_line_is_wider_than_the_old_clamp_and_squeezing_breaks_it(rec, line):
    arrays, _ = rec.preprocess_images([line / "line.png"])
    assert arrays[0].shape == (48, round(Image.open(line / "line.png").width * 48 / 44))
    assert arrays[0].shape[1] > 900
    assert rec.predict([line / "line.png"])[0].text == TEXT
    squeezed = np.asarray(Image.fromarray(arrays[0]).resize((512, 48), Image.Resampling.BILINEAR))
    assert rec.predict([squeezed])[0].text != TEXT  # what the 512 px clamp used to do


def test_python_api_reads_full_width(rec, line):
    img = Image.open(line / "line.png")
    for source in (line / "line.png", img, np.asarray(img), (line / "line.png").read_bytes()):
        assert rec.predict([source])[0].text == TEXT
    # an old checkpoint's preprocess dict, with its max_width = 512, loads and no longer squeezes
    assert Preprocess.from_dict({**rec.preprocess.to_dict(), "max_width": 512}) == rec.preprocess


def test_predict_and_eval_cli(line, capsys):
    assert main(["predict", "builtin:en", str(line / "line.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["text"] == TEXT
    assert main(["eval", "builtin:en", str(line), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["word_accuracy"] == 1.0


def test_visualize(line, tmp_path, capsys):
    assert main(["visualize", "builtin:en", str(line / "line.png"), "--out", str(tmp_path), "--json",
                 "--layers", "none", "--smooth", "0"]) == 0
    info = json.loads((tmp_path / "line.json").read_text(encoding="utf-8"))
    assert info["text"] == TEXT and info["width"] > 900


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_models(line, tmp_path, capsys, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / ("en.onnx" if fmt == "onnx" else "en.torchscript.pt")
    assert main(["export", "builtin:en", "--format", fmt, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), str(line / "line.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["text"] == TEXT


def test_service(rec, line):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from fastapi.testclient import TestClient

    from crnn.serve.app import create_app

    buf = io.BytesIO((line / "line.png").read_bytes())
    with TestClient(create_app(rec)) as client:
        r = client.post("/v1/recognize", files={"file": ("line.png", buf, "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["text"] == TEXT
