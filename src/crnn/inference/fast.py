"""Tracing a PyTorch recognizer into an exported graph, and checking the graph against it.

One definition of the exported network (:class:`Traced`), of its metadata and of the check that
an export reproduces PyTorch, used by ``crnn export`` (files) and by :class:`~crnn.Recognizer`'s
fast path (an ONNX graph held in memory and run by ONNX Runtime, which reads several times
faster on the CPU than PyTorch's step-by-step RNN).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.errors import CrnnError, ModelFileError
from crnn.inference.base import BasePredictor
from crnn.inference.exported import EXPORT_FORMAT, EXPORT_VERSION, INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES
from crnn.models.geometry import WidthSteps
from crnn.version import __version__

if TYPE_CHECKING:
    from crnn.inference.onnx import OnnxRecognizer


class Recognizer(Protocol):
    """What tracing needs of a PyTorch recognizer (:class:`crnn.Recognizer`)."""

    @property
    def model(self) -> torch.nn.Module: ...

    @property
    def charset(self) -> Charset: ...

    @property
    def preprocess(self) -> Preprocess: ...

    @property
    def config(self) -> Any: ...

    @property
    def name(self) -> str: ...

    @property
    def meta(self) -> dict: ...

    @property
    def width_steps(self) -> WidthSteps: ...

    def torch_forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

DEFAULT_OPSET = 17
VERIFY_TOLERANCE = 1e-3


class Traced(torch.nn.Module):
    """``(images, widths) -> (log_probs, lengths)``: the exported signature of a CRNN."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(images, widths)
        return out.log_probs, out.lengths


def export_metadata(rec: Recognizer) -> dict[str, Any]:
    """The JSON metadata stored in every exported model."""
    steps = [list(s) for s in rec.width_steps]
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "charset": rec.charset.chars,
        "num_classes": rec.charset.num_classes,
        "preprocess": rec.preprocess.to_dict(),
        "config": rec.config.to_dict(),
        "width_steps": steps,
        "width_reduction": int(np.prod([s[1] for s in steps])),
        "inputs": {"images": "float32 (B, C, H, W) in [-1, 1]; narrower images padded by repeating their last "
                             "column", "widths": "int64 (B,) width of each image before padding"},
        "outputs": {"log_probs": "float32 (B, T, C) log-softmax; class 0 is the CTC blank, class i is charset[i-1]",
                    "lengths": "int64 (B,) valid time steps of each image"},
        "source": Path(str(rec.name)).name,
        "meta": json.loads(json.dumps(rec.meta, default=str)),
        "crnn_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
    }


def example_batch(pre: Preprocess, widths: tuple[int, ...] = (96, 61, 40), seed: int = 0):
    """Random images of several widths, padded as in inference: (batch, widths) as NumPy arrays."""
    from crnn.data.images import normalize_batch

    rng = np.random.default_rng(seed)
    shape = (pre.height,) if pre.channels == 1 else (pre.height, 3)
    arrays = [rng.integers(0, 256, size=(shape[0], w, *shape[1:]), dtype=np.uint8) for w in widths]
    return normalize_batch(arrays, pre.channels)


def max_log_prob_diff(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest |difference| over the valid frames; infinite when shapes or lengths differ."""
    if a[0].shape != b[0].shape or not np.array_equal(np.asarray(a[1]), np.asarray(b[1])):
        return float("inf")
    return max(float(np.abs(a[0][i, :n] - b[0][i, :n]).max()) for i, n in enumerate(a[1]))


def verify_export(rec: Recognizer, exported: BasePredictor, what: str) -> float:
    """Largest log-prob difference between ``exported`` (any backend) and the PyTorch model on batches of
    other sizes and widths than traced; refuses (raises :class:`ModelFileError`) above the tolerance."""
    worst = 0.0
    for ws in ((96, 61, 40), (23,), (200, 200)):  # batched, single, other batch size and width than traced
        batch, widths = example_batch(rec.preprocess, ws)
        worst = max(worst, max_log_prob_diff(exported._forward(batch, widths), rec.torch_forward(batch, widths)))
    if not worst <= VERIFY_TOLERANCE:
        raise ModelFileError(f"{rec.name}: the {what} export does not reproduce the PyTorch model (max log-prob "
                             f"difference {worst:.3g} > {VERIFY_TOLERANCE}); nothing written")
    return worst


def trace_onnx(rec: Recognizer, opset: int = DEFAULT_OPSET):
    """The ONNX graph (an ``onnx.ModelProto``, checked) of ``rec``'s network, with its metadata."""
    try:
        import onnx
    except ImportError:
        raise CrnnError("ONNX export needs the onnx package: pip install onnx onnxruntime") from None
    if opset < 17:
        raise CrnnError(f"opset {opset} is too old: use 17 or newer")
    model = rec.model
    was_training, device = model.training, next(model.parameters()).device
    net = Traced(model.cpu().eval()).eval()
    batch, widths = example_batch(rec.preprocess, widths=(96, 64))
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation, GRU batch-size note (checked after)
            torch.onnx.export(
                net, (torch.from_numpy(batch), torch.from_numpy(widths)), buf,  # type: ignore[arg-type]
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=False, do_constant_folding=True,
                dynamic_axes={"images": {0: "batch", 3: "width"}, "widths": {0: "batch"},
                              "log_probs": {0: "batch", 1: "time"}, "lengths": {0: "batch"}})
    finally:
        model.to(device).train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(export_metadata(rec), ensure_ascii=False)
    proto.producer_name, proto.producer_version = "crnn-ocr", __version__
    proto.doc_string = (f"CRNN text-line recognizer exported by crnn-ocr {__version__}; charset "
                        f"{rec.charset.chars!r}; see metadata_props['{METADATA_KEY}']")
    onnx.checker.check_model(proto)
    return proto


def onnx_twin(rec: Recognizer, threads: int | None = None) -> OnnxRecognizer:
    """``rec``'s network on ONNX Runtime, traced in memory and checked against PyTorch."""
    from crnn.inference.exported import parse_metadata
    from crnn.inference.onnx import OnnxRecognizer

    proto = trace_onnx(rec)
    meta = parse_metadata(proto.metadata_props[0].value, rec.name)
    twin = OnnxRecognizer.from_bytes(proto.SerializeToString(), meta, rec.name, threads)
    verify_export(rec, twin, "ONNX")
    return twin
