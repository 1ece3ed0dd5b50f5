"""The shipped model ``builtin:en``: it loads wherever a model path does, and reads printed words."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crnn import Recognizer
from crnn.cli import main
from crnn.errors import ModelFileError
from crnn.inference.zoo import builtin_models, resolve_model_path
from crnn.synth import SynthConfig, bundled_fonts, render

WORDS = ["the", "People", "WORLD", "water", "Number", "42", "quickly", "Jump", "office", "Market", "$19.99",
         "garden", "Tuesday", "HELLO", "example", "(note)", "seven", "River", "question", "2024", "light",
         "Family", "school", "NIGHT", "company", "It's", "window", "3:45", "History", "yellow"]


# Stated minimum accuracy on these 30 words, per shipped model (what each reads is in BENCHMARKS.md).
MIN_ACCURACY = {"en": 0.95, "en-mobile": 0.9}  # both read 30 of 30


@pytest.fixture(scope="module", params=sorted(MIN_ACCURACY))
def shipped(request):
    return request.param, Recognizer.load(f"builtin:{request.param}")


def _images():
    fonts = [f for f in bundled_fonts() if f.name in ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")]
    cfg = dataclasses.replace(SynthConfig(system_fonts=False), blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0,
                              rotation=0.0, shear=0.0)
    rng = np.random.default_rng(0)
    return [(render(w, fonts[i % len(fonts)], rng, cfg), w) for i, w in enumerate(WORDS)]


def test_builtin_models_are_shipped_and_small():
    assert set(MIN_ACCURACY) <= set(builtin_models())
    for name in MIN_ACCURACY:
        assert resolve_model_path(f"builtin:{name}").stat().st_size < 20 * 1024 * 1024
    with pytest.raises(ModelFileError, match="available: .*en"):
        resolve_model_path("builtin:xx")


def test_builtin_models_read_rendered_words(shipped):
    name, rec = shipped
    chars = set(rec.charset.chars)
    assert set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,:;!?'()-$%") <= chars
    images = _images()
    preds = rec.predict([img for img, _ in images])
    correct = sum(p.text == w for p, (_, w) in zip(preds, images))
    wrong = [(p.text, w) for p, (_, w) in zip(preds, images) if p.text != w]
    assert correct / len(images) >= MIN_ACCURACY[name], wrong


def test_builtin_name_works_in_the_cli(tmp_path, capsys):
    img, word = _images()[1]
    img.save(tmp_path / f"{word}.png")
    capsys.readouterr()
    assert main(["predict", "builtin:en", str(tmp_path / f"{word}.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["text"] == word
    assert main(["eval", "builtin:en", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 1


GOLDEN = json.loads((Path(__file__).parent.parent / "data" / "builtin_golden.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize("name", sorted(MIN_ACCURACY))
def test_shipped_models_read_exactly_what_they_read_before_the_redesign(name, runtime):
    """The texts recorded with the code before the #14 redesign (``data/make_builtin_golden.py``), byte for
    byte, on PyTorch and on the fast path (ONNX Runtime, the default when installed)."""
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(Path(__file__).parent.parent / "data"))
    from make_builtin_golden import golden_images

    rec = Recognizer.load(f"builtin:{name}", runtime=runtime)
    assert rec.runtime == runtime
    assert [p.text for p in rec.predict(golden_images())] == GOLDEN[name]


def test_the_fast_path_is_the_default_and_keeps_the_pytorch_model():
    pytest.importorskip("onnxruntime")
    rec = Recognizer.load("builtin:en-mobile")
    assert rec.runtime == "onnx" and isinstance(rec.model, torch.nn.Module)
    images = [img for img, _ in _images()[:8]]
    fast, slow = rec.predict(images), Recognizer.load("builtin:en-mobile", runtime="torch").predict(images)
    assert [p.text for p in fast] == [p.text for p in slow]
    assert np.allclose([p.confidence for p in fast], [p.confidence for p in slow], atol=1e-4)
