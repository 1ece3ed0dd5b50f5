"""Export to ONNX / TorchScript: the exported models reproduce PyTorch, and the ONNX path needs no torch."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import render_text
from crnn import Recognizer
from crnn.charset import Charset
from crnn.config import Config, ModelConfig, apply_overrides
from crnn.data.images import Preprocess, normalize_batch
from crnn.errors import ModelFileError
from crnn.export.cli import register as register_export
from crnn.export.onnx import export_onnx
from crnn.export.torchscript import export_torchscript
from crnn.inference.exported import METADATA_KEY
from crnn.inference.fast import export_metadata
from crnn.inference.onnx import OnnxRecognizer, read_metadata
from crnn.inference.torchscript import TorchScriptRecognizer
from crnn.models import build_model
from crnn.models.geometry import output_lengths

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs onnx and onnxruntime (pip install onnx onnxruntime)")

TOLERANCE = 1e-4
_TRAINED: dict[str, Path] = {}


def tiny_model_path(toy_data: Path, tmp_path_factory) -> Path:
    """A small model trained 3 epochs on the toy set, once per test session (shared by the serve tests)."""
    if "best" not in _TRAINED:
        from crnn.training.loop import train

        cfg = apply_overrides(Config(), ["data.height=32",
                                         "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3",
                                         "train.epochs=3", "train.seed=0"])
        result = train(cfg, toy_data / "train", tmp_path_factory.mktemp("export_run") / "exp",
                       val_path=toy_data / "test", progress=False, log=lambda *a: None)
        _TRAINED["best"] = Path(result.best_path)
    return _TRAINED["best"]


@pytest.fixture(scope="module")
def model_path(toy_data, tmp_path_factory) -> Path:
    return tiny_model_path(toy_data, tmp_path_factory)


@pytest.fixture(scope="module")
def onnx_path(model_path, tmp_path_factory) -> Path:
    result = export_onnx(model_path, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff < TOLERANCE
    return result.path


@pytest.fixture(scope="module")
def images(toy_data, tmp_path_factory) -> list[Path]:
    """Text lines of many widths: the toy test set plus some longer and very short renderings."""
    folder = tmp_path_factory.mktemp("widths")
    extra = []
    for i, text in enumerate(["A", "x", "AB-7xAB-7x", "7-7-7-7-7-7-BBBB", "xA"]):
        p = folder / f"w{i}.png"
        render_text(text).save(p)
        extra.append(p)
    wide = folder / "wide.png"
    render_text("AB" * 40).save(wide)  # over 512 px at model height: read at full width
    return sorted((toy_data / "test").glob("*.png"))[:20] + extra + [wide]


@needs_onnx
def test_onnx_log_probs_match_pytorch_batched_and_single(model_path, onnx_path, images):
    rec, orec = Recognizer.load(model_path), OnnxRecognizer.load(onnx_path, threads=1)
    widths = {a.shape[1] for a in rec.preprocess_images(images)[0]}
    assert len(widths) > 5 and max(widths) > 512
    for batch_size in (64, 7, 1):  # one padded batch, several, and one image at a time
        arrays = rec.preprocess_images(images)[0]
        from crnn.inference.pytorch import run_model

        _, torch_lp = run_model(rec.model, arrays, 1, rec.device, batch_size, keep_log_probs=True)
        _, onnx_lp = orec.run_arrays(arrays, batch_size, keep_log_probs=True)
        for a, b in zip(torch_lp, onnx_lp):
            assert a.shape == b.shape
            assert np.abs(a - b).max() < TOLERANCE
        p_torch = rec.predict(images, batch_size=batch_size)
        p_onnx = orec.predict(images, batch_size=batch_size)
        assert [p.text for p in p_torch] == [p.text for p in p_onnx]
        assert [p.name for p in p_torch] == [p.name for p in p_onnx]
        assert [p.frames for p in p_torch] == [p.frames for p in p_onnx]
        np.testing.assert_allclose([p.confidence for p in p_torch], [p.confidence for p in p_onnx], atol=1e-4)
        assert [p.to_dict() | {"confidence": 0} for p in p_torch] == [p.to_dict() | {"confidence": 0}
                                                                     for p in p_onnx]


@needs_onnx
def test_onnx_graph_raw_outputs_on_padded_batch(model_path, onnx_path):
    rec, orec = Recognizer.load(model_path), OnnxRecognizer.load(onnx_path)
    rng = np.random.default_rng(3)
    arrays = [rng.integers(0, 256, (32, w), dtype=np.uint8) for w in (16, 33, 250, 7)]
    batch, widths = normalize_batch(arrays, 1)
    lp, lengths = orec._forward(batch, widths)
    with torch.inference_mode():
        ref = rec.model(torch.from_numpy(batch)).numpy()
        ref_len = rec.model.output_lengths(torch.from_numpy(widths)).numpy()
    assert lp.shape == ref.shape and lengths.tolist() == ref_len.tolist()
    assert np.abs(lp - ref).max() < TOLERANCE


@needs_onnx
def test_onnx_file_is_self_contained(model_path, onnx_path):
    import onnx

    proto = onnx.load(str(onnx_path))
    assert proto.opset_import[0].version >= 17
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props[METADATA_KEY])
    assert meta == read_metadata(onnx_path)
    rec = Recognizer.load(model_path)
    assert meta["charset"] == rec.charset.chars == "-7ABx"
    assert Preprocess.from_dict(meta["preprocess"]) == rec.preprocess
    assert meta["config"]["model"]["rnn_hidden"] == 64
    assert [i.name for i in proto.graph.input] == ["images", "widths"]
    assert [o.name for o in proto.graph.output] == ["log_probs", "lengths"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[3] == "width" and dims[1:3] == [1, 32]
    # the metadata's width arithmetic is the model's, for every width
    w = np.arange(1, 700)
    assert output_lengths(w, meta["width_steps"]).tolist() == rec.model.output_lengths(torch.from_numpy(w)).tolist()


@needs_onnx
@pytest.mark.parametrize("arch,rnn,channels", [("half", "LSTM", 3), ("mobile", "GRU", 1)])
def test_other_architectures_export_exactly(arch, rnn, channels, tmp_path):
    """Untrained models of other presets (kernel-2 conv, LSTM, RGB, depthwise) export and agree."""
    torch.manual_seed(0)
    cfg = Config()
    cfg.model = ModelConfig(arch=arch, rnn_type=rnn, rnn_hidden=32, rnn_layers=2)
    cs, pre = Charset("abc123"), Preprocess(height=32, channels=channels)
    model = build_model(cfg.model, cs.num_classes, channels, 32)
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    rec = Recognizer(model, cs, pre, cfg, name=f"{arch}.pt")
    result = export_onnx(rec, tmp_path / "m.onnx")
    assert result.max_abs_diff < TOLERANCE
    orec = OnnxRecognizer.load(result.path)
    rng = np.random.default_rng(0)
    shape = (lambda w: (32, w, 3)) if channels == 3 else (lambda w: (32, w))
    imgs = [rng.integers(0, 256, shape(w), dtype=np.uint8) for w in (20, 64, 131)]
    a, b = rec.log_probs(imgs), orec.log_probs(imgs)
    assert all(np.abs(x - y).max() < TOLERANCE for x, y in zip(a, b))
    assert orec.metadata["width_steps"] == export_metadata(rec)["width_steps"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_round_trip(model_path, images, tmp_path):
    result = export_torchscript(model_path, tmp_path / "tiny.torchscript.pt")
    assert result.max_abs_diff is not None and result.max_abs_diff < TOLERANCE
    rec, ts = Recognizer.load(model_path), TorchScriptRecognizer.load(result.path)
    assert ts.charset == rec.charset and ts.preprocess == rec.preprocess
    for batch_size in (64, 1):
        a, b = rec.predict(images, batch_size=batch_size), ts.predict(images, batch_size=batch_size)
        assert [p.text for p in a] == [p.text for p in b]
        np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], atol=1e-4)
    lp_a, lp_b = rec.log_probs(images[:5]), ts.log_probs(images[:5])
    assert all(np.abs(x - y).max() < TOLERANCE for x, y in zip(lp_a, lp_b))
    # plain torch.jit.load works too, with the metadata as an extra file
    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.jit.load(str(result.path), _extra_files=extra)
    assert json.loads(extra[f"{METADATA_KEY}.json"])["charset"] == rec.charset.chars
    lp, lengths = module(torch.zeros(2, 1, 32, 40), torch.tensor([40, 17]))
    assert lp.shape[:2] == (2, 10) and lengths.tolist() == [10, 4]


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


def _export_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crnn")
    register_export(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@needs_onnx
def test_export_cli_and_predict_backend_onnx(model_path, tmp_path, capsys):
    from crnn.cli import main

    out = tmp_path / "cli.onnx"
    assert _export_cli(["export", str(model_path), "--format", "onnx", "--out", str(out)]) == 0
    assert "checked against PyTorch" in capsys.readouterr().out and out.is_file()
    assert _export_cli(["export", str(model_path), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    assert "torchscript" in capsys.readouterr().out
    img = tmp_path / "AB.png"
    render_text("AB").save(img)
    assert main(["predict", str(out), str(img), "--backend", "onnx", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = Recognizer.load(model_path).predict([img])[0]
    assert len(got) == 1 and got[0]["name"] == str(img) and got[0]["text"] == ref.text
    assert abs(got[0]["confidence"] - ref.confidence) < 1e-4
    # without --backend the file type decides: .onnx -> ONNX Runtime, .torchscript.pt -> TorchScript
    (tmp_path / "m.ts").rename(tmp_path / "m.torchscript.pt")
    for model in (out, tmp_path / "m.torchscript.pt"):
        assert main(["predict", str(model), str(img), "--format", "json"]) == 0
        auto = json.loads(capsys.readouterr().out)
        assert auto[0]["text"] == ref.text and abs(auto[0]["confidence"] - ref.confidence) < 1e-4


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


@needs_onnx
def test_default_output_paths(model_path, tmp_path):
    import shutil

    src = tmp_path / "best.pt"
    shutil.copy(model_path, src)
    assert export_onnx(src, verify=False).path == tmp_path / "best.onnx"
    assert export_torchscript(src, verify=False).path == tmp_path / "best.torchscript.pt"
