"""crnn.insight.visualize (and ``crnn visualize``): feature maps, alignment, saliency and figures."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from conftest import one_error_line, render_text
from crnn.cli import main
from crnn.data.images import normalize_batch
from crnn.errors import ConfigError, CrnnError, DataError
from crnn.insight import visualize
from crnn.insight.cli import register


def test_visualize_and_eval_report_say_they_need_the_checkpoint(onnx_file, images, tmp_path, capsys):
    assert main(["visualize", str(onnx_file), str(images), "--out", str(tmp_path / "viz")]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "is an exported ONNX model, not a checkpoint" in err and "truncated" not in err
    renamed = tmp_path / "model.pt"  # the same file under a checkpoint's name
    renamed.write_bytes(onnx_file.read_bytes())
    assert main(["visualize", str(renamed), str(images), "--out", str(tmp_path / "viz")]) == 2
    assert "is an exported ONNX model" in one_error_line(capsys.readouterr().err)
    assert main(["eval", str(onnx_file), str(images), "--report", str(tmp_path / "rep")]) == 2
    assert "--report draws alignments with PyTorch" in one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def line_image():
    """'AB-7x' with wide white margins: ink in the middle third only."""
    text = render_text("AB-7x")
    img = Image.new("L", (text.width * 3, text.height), 255)
    img.paste(text, (text.width, 0))
    return img


def test_layer_selection(rec):
    n = len(rec.model.cnn)
    assert visualize.resolve_layers(rec.model, None) == visualize.default_layers(rec.model)
    assert len(visualize.default_layers(rec.model)) == 2 and visualize.default_layers(rec.model)[-1] == n - 1
    assert visualize.resolve_layers(rec.model, "all") == list(range(n))
    assert visualize.resolve_layers(rec.model, "stage2, 1,last") == [0, 1, n - 1]
    assert visualize.resolve_layers(rec.model, "none") == []
    for bad in ("0", f"{n + 1}", "conv3", "stage"):
        with pytest.raises(ConfigError, match="not a conv stage"):
            visualize.resolve_layers(rec.model, bad)


def test_explanation_arrays(rec, line_image):
    e = visualize.explain(rec, line_image, name="line")
    h, w = e.input.shape
    assert (h, w) == (32, line_image.width) and e.image.shape == (h, w) and e.image.dtype == np.uint8
    assert e.input.min() >= -1 and e.input.max() <= 1
    steps = rec.model.output_length(w)
    assert e.log_probs.shape == (steps, rec.charset.num_classes)
    assert e.top_classes.shape == e.top_probs.shape == e.frame_x.shape == (steps,)
    assert np.all((e.top_probs > 0) & (e.top_probs <= 1))
    # the same reading as the public API
    p = rec.predict(line_image)[0]
    assert (e.text, e.confidence) == (p.text, pytest.approx(p.confidence, rel=1e-4))
    # feature maps of the default stages, upsampled onto the image
    names = [f"stage{i + 1}" for i in visualize.default_layers(rec.model)]
    assert list(e.feature_maps) == list(e.mean_maps) == names
    for name in names:
        assert e.feature_maps[name].shape == (4, h, w) and e.mean_maps[name].shape == (h, w)
        c = e.layer_shapes[name][0]
        assert len(set(e.feature_channels[name])) == 4 and all(0 <= k < c for k in e.feature_channels[name])
        assert np.all(e.feature_maps[name] >= -1e-6)  # post-ReLU activations
    # saliency
    assert e.saliency.shape == (h, w) and np.isfinite(e.saliency).all()
    assert e.saliency.max() == pytest.approx(1.0) and e.saliency.min() >= 0


@pytest.fixture(scope="module")
def read_correctly(rec, toy_data) -> list[tuple[str, visualize.Explanation]]:
    """Up to 6 test-set labels the tiny model reads correctly, with their explanations."""
    out = []
    for line in (toy_data / "test" / "labels.tsv").read_text(encoding="utf-8").splitlines():
        label = line.split("\t")[1]
        e = visualize.explain(rec, render_text(label), layers="none")
        if e.text == label:
            out.append((label, e))
        if len(out) == 6:
            break
    assert len(out) >= 3, "the tiny model should read several toy test images"
    return out


def _glyph_boxes(label: str) -> list[tuple[float, float]]:
    """Where conftest.render_text drew each character (x from, x to)."""
    font = ImageFont.load_default(size=22)
    return [(4 + font.getlength(label[:i]), 4 + font.getlength(label[:i + 1])) for i in range(len(label))]


def test_alignment_puts_each_character_on_its_glyph(read_correctly):
    for label, e in read_correctly:
        w = e.input.shape[1]
        assert "".join(c for c, _, _ in e.char_positions) == label
        xs = [x for _, x, _ in e.char_positions]
        assert all(0 <= x <= w for x in xs) and xs == sorted(xs)
        assert all(0 < p <= 1 for _, _, p in e.char_positions)
        step = w / e.steps
        for (ch, x, _), (x0, x1) in zip(e.char_positions, _glyph_boxes(label)):
            assert x0 - step <= x <= x1 + step, (label, ch, x, (x0, x1))
        steps = e.alignment()
        assert len(steps) == e.steps and [s["t"] for s in steps] == list(range(e.steps))
        assert {s["label"] for s in steps} <= set(label) | {visualize.BLANK_MARK}


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    padded = np.pad(mask, r)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= padded[r + dy: r + dy + mask.shape[0], r + dx: r + dx + mask.shape[1]]
    return out


@pytest.mark.parametrize("mode", ["sequence", "chars"])
def test_saliency_looks_at_the_ink(rec, read_correctly, mode):
    for label, _ in read_correctly[:3]:
        e = visualize.explain(rec, render_text(label), layers="none", saliency=mode, smooth=2)
        assert e.saliency.shape == e.input.shape and np.isfinite(e.saliency).all() and e.saliency.max() > 0
        ink = e.image < 128
        near, far = _dilate(ink, 2), ~_dilate(ink, 4)
        assert e.saliency[near].mean() > 1.5 * e.saliency[far].mean(), label


def test_sequence_saliency_is_the_gradient_of_log_p_text(rec):
    e = visualize.explain(rec, render_text("B7x"), layers="none")
    x = torch.from_numpy(normalize_batch([e.image], 1)[0]).requires_grad_(True)
    lp = rec.model.eval()(x)
    target = torch.tensor(rec.charset.encode(e.text), dtype=torch.long)
    log_p = -torch.nn.functional.ctc_loss(lp.transpose(0, 1), target, torch.tensor([lp.shape[1]]),
                                          torch.tensor([len(target)]), reduction="sum")
    (g,) = torch.autograd.grad(log_p, x)
    expected = g[0, 0].abs() / g.abs().max()
    assert np.allclose(e.saliency, expected.numpy(), atol=1e-5)


def test_explain_errors(rec, tmp_path):
    with pytest.raises(ConfigError):
        visualize.explain(rec, render_text("AB"), saliency="magic")
    class OnnxLike:
        preprocess, charset = rec.preprocess, rec.charset

    with pytest.raises(CrnnError, match="PyTorch"):
        visualize.explanation_png(OnnxLike(), render_text("AB"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        visualize.explain(rec, bad)


def test_explain_restores_model_state(rec):
    rec.model.train()
    try:
        visualize.explain(rec, render_text("7x"), layers="all")
        assert rec.model.training
        assert not rec.model.cnn[0]._forward_hooks  # hooks removed
        assert all(p.grad is None for p in rec.model.parameters())
    finally:
        rec.model.eval()


def test_figure_png(rec, line_image, tmp_path):
    e = visualize.explain(rec, line_image)
    path = visualize.render_explanation(e, tmp_path / "sub" / "x.png")
    img = Image.open(path)
    assert img.format == "PNG" and img.width == 1000 and 500 < img.height < 3000
    rgb = np.asarray(img.convert("RGB")).astype(int)
    assert rgb.std() > 20  # something is drawn
    # bytes for the HTTP service; fewer layers, fewer rows
    png = visualize.explanation_png(rec, line_image, layers="none", smooth=0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    small = Image.open(io.BytesIO(png))
    assert small.width == 1000 and 250 < small.height < img.height
    e_all = visualize.explain(rec, line_image, layers="all", channels=2)
    assert len(e_all.feature_maps) == len(rec.model.cnn)
    assert visualize.figure(e_all).get_size_inches()[1] > visualize.figure(e).get_size_inches()[1]


def test_figure_of_an_empty_reading(rec):
    e = visualize.explain(rec, np.full((32, 40), 255, np.uint8), layers="last", channels=1)
    assert np.isfinite(e.saliency).all()
    empty = dataclasses.replace(e, text="", char_positions=[], saliency=np.zeros_like(e.saliency))
    assert visualize.figure_png(empty)[:4] == b"\x89PNG"


def _parser():
    parser = argparse.ArgumentParser(prog="crnn")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_visualize(run, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    render_text("AB").save(imgs / "AB.png")
    render_text("7x").save(imgs / "sub" / "AB.png")  # same stem: must not overwrite
    (imgs / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    args = _parser().parse_args(["visualize", str(run.best_path), str(imgs), "--out", str(out), "--layers", "last",
                                 "--smooth", "0", "--json"])
    assert args.func(args) == 1  # one unreadable image
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 of 3 images could not be read" in err
    assert sorted(p.name for p in out.iterdir()) == ["AB-2.json", "AB-2.png", "AB.json", "AB.png"]
    info = json.loads((out / "AB.json").read_text())
    assert {"text", "confidence", "characters", "steps"} <= set(info)
    assert Image.open(out / "AB.png").width == 1000
    bad = _parser().parse_args(["visualize", str(run.best_path), str(imgs / "AB.png"), "--out", str(out),
                                "--layers", "99"])
    with pytest.raises(CrnnError, match="not a conv stage"):
        bad.func(bad)


def test_cli_is_wired_into_crnn(run, tmp_path):
    from crnn.cli import build_parser, main

    if "visualize" not in build_parser().format_help():
        pytest.skip("crnn visualize is not wired into crnn.cli yet")
    render_text("AB").save(tmp_path / "AB.png")
    assert main(["visualize", str(run.best_path), str(tmp_path / "AB.png"), "--out", str(tmp_path / "o"),
                 "--smooth", "0", "--layers", "none"]) == 0
    assert (tmp_path / "o" / "AB.png").is_file()
    assert main(["visualize", str(tmp_path / "missing.pt"), str(tmp_path / "AB.png"), "--out", "x"]) == 2
