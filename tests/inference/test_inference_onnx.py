"""crnn.inference.onnx: the ONNX Runtime recognizer, its errors, decoders and torch-free predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_onnx, render_text
from crnn import Recognizer
from crnn.errors import ModelFileError
from crnn.inference.onnx import OnnxRecognizer


@pytest.fixture(scope="module")
def images(width_images) -> list[Path]:
    """Text lines of many widths (``width_images`` in conftest.py)."""
    return width_images


@needs_onnx
def test_unreadable_images_are_reported(onnx_path, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    orec = OnnxRecognizer.load(onnx_path)
    preds = orec.predict([bad, render_text("AB")], on_error="report")
    assert preds[0].error and "not an image" in preds[0].error and preds[0].text == ""
    assert preds[1].error is None and preds[1].name == "image1"
    with pytest.raises(Exception, match="not an image"):
        orec.predict([bad])


@needs_onnx
def test_beam_and_lexicon_match_pytorch(model_path, onnx_path, images, tmp_path):
    pytest.importorskip("crnn.decoding.beam")
    pytest.importorskip("crnn.decoding.lexicon")
    rec, orec = Recognizer.load(model_path), OnnxRecognizer.load(onnx_path)
    assert [p.text for p in rec.predict(images, beam=5)] == [p.text for p in orec.predict(images, beam=5)]
    words = tmp_path / "words.txt"
    words.write_text("AB\nx7\nB-A\n7\nxx\nAAx\n", encoding="utf-8")
    a = [p.text for p in rec.predict(images, lexicon=str(words))]
    assert a == [p.text for p in orec.predict(images, lexicon=str(words))]
    assert set(a) <= {"AB", "x7", "B-A", "7", "xx", "AAx"}


@needs_onnx
def test_load_errors(model_path, tmp_path):
    with pytest.raises(ModelFileError, match="export it first"):
        OnnxRecognizer.load(model_path)
    with pytest.raises(ModelFileError, match="not found"):
        OnnxRecognizer.load(tmp_path / "missing.onnx")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["log_probs"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, None)])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(plain))
    with pytest.raises(ModelFileError, match="not a model exported by `crnn export`"):
        OnnxRecognizer.load(plain)


@needs_onnx
def test_predict_backend_onnx_never_imports_torch(model_path, onnx_path, images, tmp_path):
    """``crnn predict MODEL.onnx`` (backend picked by the suffix) in a fresh interpreter: same texts, no torch."""
    script = (
        "import json, sys\n"
        "from crnn.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
        "print(json.dumps({'rc': rc, 'torch': heavy, 'ort': 'onnxruntime' in sys.modules}), file=sys.stderr)\n"
    )
    paths = [str(p) for p in images[:8]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", script, "predict", str(onnx_path), *paths,
                           "--format", "tsv"], capture_output=True, text=True, timeout=120,
                          env=env)
    status = json.loads(proc.stderr.strip().splitlines()[-1])
    assert status == {"rc": 0, "torch": [], "ort": True}, proc.stderr[-2000:]
    imported = [ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    assert "onnxruntime" in imported and not any(m.split(".")[0] == "torch" for m in imported)
    rows = [ln.split("\t") for ln in proc.stdout.strip().splitlines()]
    ref = Recognizer.load(model_path).predict(paths)
    assert [(r[0], r[1]) for r in rows] == [(p.name, p.text) for p in ref]
