"""crnn.export.onnx: exported ONNX graphs match PyTorch and carry everything they need."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TOLERANCE, needs_onnx
from crnn import Recognizer
from crnn.charset import Charset
from crnn.config import Config, ModelConfig
from crnn.data.images import Preprocess, normalize_batch
from crnn.export.onnx import export_onnx
from crnn.inference.exported import METADATA_KEY
from crnn.inference.fast import export_metadata
from crnn.inference.onnx import OnnxRecognizer, read_metadata
from crnn.models import build_model
from crnn.models.geometry import output_lengths


@pytest.fixture(scope="module")
def images(width_images) -> list[Path]:
    """Text lines of many widths (``width_images`` in conftest.py)."""
    return width_images


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
