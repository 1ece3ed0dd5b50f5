"""crnn.insight: explanation figures, training curves, TensorBoard hook and the HTML evaluation report."""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import io
import json
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from conftest import make_toy_set, render_text
from crnn import Prediction, Recognizer
from crnn.config import Config, ModelConfig, apply_overrides
from crnn.data.images import normalize_batch
from crnn.data.validate import Report
from crnn.errors import ConfigError, CrnnError, DataError
from crnn.insight import report, visualize
from crnn.insight.cli import register
from crnn.metrics import TextMetrics, char_edits, confusions
from crnn.models import PRESETS, build_model
from crnn.training import curves, tensorboard
from crnn.training.loop import train
from crnn.training.runlog import METRIC_FIELDS

FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.log_every=5"]


@pytest.fixture(scope="module")
def run(toy_data, tmp_path_factory):
    """A tiny model trained for 4 epochs (it reads most of the toy set) and its run folder."""
    cfg = apply_overrides(Config(), FAST + ["train.epochs=4"])
    return train(cfg, toy_data / "train", tmp_path_factory.mktemp("insight") / "run", val_path=toy_data / "test",
                 progress=False, log=lambda *a: None)


@pytest.fixture(scope="module")
def rec(run):
    return Recognizer.load(run.best_path)


@pytest.fixture(scope="module")
def line_image():
    """'AB-7x' with wide white margins: ink in the middle third only."""
    text = render_text("AB-7x")
    img = Image.new("L", (text.width * 3, text.height), 255)
    img.paste(text, (text.width, 0))
    return img


def _ink_columns(expl) -> tuple[int, int]:
    dark = np.nonzero((expl.image < 128).any(axis=0))[0]
    return int(dark.min()), int(dark.max()) + 1


# ------------------------------------------------------------------------------------------ geometry


def _linearised(cnn: torch.nn.Module) -> torch.nn.Module:
    """The conv stack with max-pools as average pools and ReLUs removed: its gradient support is exactly
    the receptive field."""
    m = copy.deepcopy(cnn).float().eval()
    for stage in m:
        for i, layer in enumerate(stage):
            if isinstance(layer, torch.nn.MaxPool2d):
                stage[i] = torch.nn.AvgPool2d(layer.kernel_size, layer.stride)
            elif isinstance(layer, torch.nn.ReLU):
                stage[i] = torch.nn.Identity()
            elif isinstance(layer, torch.nn.Conv2d):
                torch.nn.init.constant_(layer.weight, 0.1)
    return m


@pytest.mark.parametrize("arch", list(PRESETS))
def test_frame_centres_are_receptive_field_centres(arch):
    width = 96
    model = build_model(ModelConfig(arch=arch), num_classes=5)
    cnn = _linearised(model.cnn)
    x = torch.ones(1, 1, 32, width, requires_grad=True)
    f = cnn(x)
    steps = f.shape[-1]
    assert steps == model.output_length(width)
    centres = model.frame_centres(width, steps)
    assert centres.shape == (steps,) and np.all(np.diff(centres) > 0)
    for t in (steps // 3, steps // 2):  # interior steps: the field is not cut by the image border
        (g,) = torch.autograd.grad(f[0, :, :, t].sum(), x, retain_graph=True)
        cols = torch.nonzero(g[0, 0].abs().sum(0) > 0).flatten()
        assert centres[t] == pytest.approx((float(cols.min()) + float(cols.max()) + 1) / 2)
    if all(b.kernel == 3 for b in model.blocks):  # plain 4x width pooling: t -> (t + 0.5) * W / T
        assert np.allclose(centres, (np.arange(steps) + 0.5) * width / steps)


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


# ------------------------------------------------------------------------------------------ explain


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


# ----------------------------------------------------------------------------------------------- cli


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


# -------------------------------------------------------------------------------------------- curves


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, METRIC_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in METRIC_FIELDS})
    return path


def _blue_pixels(path: Path) -> int:
    """Pixels of matplotlib's first colour (C0, the loss curve)."""
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(a - np.array([31, 119, 180])).sum(axis=2) < 40).sum())


def test_training_writes_curves(run):
    assert (run.run_dir / "curves.png").is_file() and not (run.run_dir / "curves.error.txt").exists()
    assert _blue_pixels(run.run_dir / "curves.png") > 200


def test_curves_one_row_many_rows_and_gaps(run, tmp_path):
    one = _write_csv(tmp_path / "one.csv", [{"epoch": 1, "step": 10, "elapsed_s": 3.5, "lr": 0.001,
                                             "train_loss": 2.5, "val_accuracy": 0.1, "val_cer": 0.8}])
    out = curves.plot_curves(one, tmp_path / "one.png")
    img = Image.open(out)
    assert out == tmp_path / "one.png" and img.size == (1100, 700)
    assert _blue_pixels(out) > 10  # the single loss point is drawn
    many = curves.plot_curves(run.run_dir / "metrics.csv", tmp_path / "many.png")
    assert _blue_pixels(many) > _blue_pixels(out)
    gaps = _write_csv(tmp_path / "gaps.csv", [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "step": 20, "lr": 0.001},
                                              {"epoch": 3, "train_loss": 1.0, "val_accuracy": 0.5}])
    assert Image.open(curves.plot_curves(gaps, tmp_path / "gaps.png")).size == (1100, 700)
    header_only = _write_csv(tmp_path / "empty.csv", [])
    assert Image.open(curves.plot_curves(header_only, tmp_path / "empty.png")).size == (1100, 700)
    with pytest.raises(DataError, match="not found"):
        curves.plot_curves(tmp_path / "nope.csv", tmp_path / "nope.png")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


# --------------------------------------------------------------------------------------- tensorboard


def test_tensorboard_logger_logs_metric_rows(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir):
            calls.append(("init", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setattr(tensorboard, "_summary_writer_class", lambda: FakeWriter)
    with tensorboard.TensorBoardLogger(tmp_path) as tb:
        tb.log_epoch({"epoch": 2, "step": 30, "train_loss": 0.5, "val_accuracy": 0.75, "val_cer": None, "lr": 1e-3})
    assert calls[0] == ("init", str(tmp_path / "tensorboard"))
    logged = {c[0]: c[1:] for c in calls[1:-1]}
    assert logged == {"train/loss": (0.5, 30), "val/word_accuracy": (0.75, 30), "train/learning_rate": (1e-3, 30),
                      "time/epoch": (2.0, 30)}
    assert calls[-1] == ("close",)


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(CrnnError, match="pip install tensorboard"):
        tensorboard.TensorBoardLogger(tmp_path)


# -------------------------------------------------------------------------------------------- report


def test_char_edits_and_confusions():
    assert char_edits("AB-7", "A8-77") == [("substitution", "B", "8"), ("insertion", "", "7")]
    assert char_edits("AB", "B") == [("deletion", "A", "")]
    counts = confusions([("AB-7", "A8-77"), ("BB", "88"), ("x", "x")])
    assert counts == {("substitution", "B", "8"): 3, ("insertion", "", "7"): 1}
    assert report.visible(" ") == "\u2423" and report.visible("") == "\u2205"


def test_metrics_rank_character_errors():
    m = TextMetrics()
    m.update(["0O1", "O0", "HI", "AB", "OK"], ["OO1", "00", "H", "AB", "0K"])
    top = m.char_errors_top(2)
    assert top == [(("substitution", "O", "0"), 2), (("substitution", "0", "O"), 1)]
    listed = m.summary()["top_char_errors"]
    assert listed[0] == {"kind": "substitution", "truth": "O", "pred": "0", "count": 2}
    assert {"kind": "deletion", "truth": "I", "pred": "", "count": 1} in listed


class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.refs.append(a["src"])
        if tag == "a" and a.get("href"):
            self.refs.append(a["href"])
        if tag in ("script", "link"):
            self.problems.append(f"<{tag}> in a static page")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _check_page(page: Path) -> _Checker:
    checker = _Checker()
    checker.feed(page.read_text(encoding="utf-8"))
    checker.close()
    assert not checker.problems and not checker.stack, (checker.problems, checker.stack)
    for ref in checker.refs:
        assert "://" not in ref and not ref.startswith("/"), ref  # no external assets
        assert (page.parent / ref).is_file(), ref
    return checker


def test_report_page(rec, tmp_path):
    data = tmp_path / "hard"
    make_toy_set(data, 24, seed=7, min_len=4, max_len=9)  # longer than anything trained on: some errors
    (data / "zz_broken.png").write_bytes(b"nope")
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("zz_broken.png\tAB\n")
    metrics, data_report, preds = rec.evaluate(data)
    assert metrics.errors, "the test needs some errors"
    out = tmp_path / "rep"
    (out / "images").mkdir(parents=True)
    (out / "images" / "stale.png").write_bytes(b"old")
    page = report.write_report(out, rec, metrics, preds, data_report, str(data), worst=6, explain=1)
    assert page == out / "index.html"
    checker = _check_page(page)
    text = " ".join(checker.text)
    for heading in ("Metrics", "Accuracy by label length", "Character confusions", "Worst errors"):
        assert heading in text
    assert f"{metrics.accuracy:.2%}" in text and "zz_broken.png" in text
    shown = min(6, len(metrics.errors))
    gallery = [r for r in checker.refs if r.startswith("images/error_")]
    assert len(gallery) == shown
    assert sum(r.startswith("images/explain_") for r in checker.refs) == 1
    assert not (out / "images" / "stale.png").exists()
    img = Image.open(out / gallery[0])
    assert img.height == 32 and img.mode == "L"  # the image as the model saw it
    first = metrics.worst(6)[0]
    assert report.esc(first.truth) in page.read_text(encoding="utf-8")


def test_report_escapes_text(rec, tmp_path):
    evil = '<script>alert("x")</script>&'
    m = TextMetrics()
    m.update([evil, "AB"], ["A<b>", "AB"], names=[f"{evil}.png", "ok.png"], confidences=[0.9, 0.8])
    preds = [Prediction("A<b>", 0.9, f"{evil}.png"), Prediction("AB", 0.8, "ok.png")]

    data_report = Report(evil, total=3, kept=2, skipped=[(evil, evil)], unknown_chars=Counter({"<": 1}))
    page = report.write_report(tmp_path / "r", rec, m, preds, data_report, tmp_path / evil, explain=0)
    raw = page.read_text(encoding="utf-8")
    assert "<script>" not in raw and "<b>" not in raw
    assert "&lt;script&gt;" in raw
    checker = _check_page(page)
    assert "image unavailable" in " ".join(checker.text)
