"""Export a checkpoint to a self-contained ONNX file (dynamic batch and width).

The graph (opset 17 by default, legacy TorchScript-based exporter) takes
``images`` (B, C, H, W) float32 in [-1, 1] and ``widths`` (B,) int64 and returns
``log_probs`` (B, T, C) and ``lengths`` (B,) int64. Everything needed to use the
file (charset, preprocessing, config, width reduction) is stored as JSON in
``metadata_props["crnn_ocr"]``; see :mod:`crnn.export.onnx_runtime`.

After writing, the export is checked: ONNX Runtime and PyTorch are run on the
same batch of random images of different widths, and the file is only put in
place when their log-probs agree.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn import __version__
from crnn.errors import CrnnError, ModelFileError
from crnn.export.onnx_runtime import EXPORT_FORMAT, EXPORT_VERSION, INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES
from crnn.fileio import atomic_write
from crnn.recognizer import Recognizer

DEFAULT_OPSET = 17
VERIFY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    size_bytes: int
    max_abs_diff: float | None
    """Largest log-prob difference between the exported model and PyTorch on the check batch (None: unchecked)."""


class _WithLengths(torch.nn.Module):
    """``(images, widths) -> (log_probs, lengths)``: the model plus its output-length arithmetic."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(images), self.model.output_lengths(widths)


def as_recognizer(model: str | os.PathLike | Recognizer) -> Recognizer:
    return model if isinstance(model, Recognizer) else Recognizer.load(model)


def width_steps(model: torch.nn.Module) -> list[list[int]]:
    """``[subtract, divide]`` per conv stage: how :meth:`CRNN.output_lengths` maps widths to time steps."""
    steps = []
    for b in model.blocks:
        steps.append([b.kernel - 1 if b.kernel != 3 else 0, b.pool[1] if b.pool else 1])
    return steps


def export_metadata(rec: Recognizer) -> dict[str, Any]:
    """The JSON metadata stored in every exported model."""
    steps = width_steps(rec.model)
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


def example_batch(rec: Recognizer, widths: tuple[int, ...] = (96, 61, 40), seed: int = 0):
    """Random images of several widths, padded as in inference: (batch, widths) as NumPy arrays."""
    from crnn.data.images import normalize_batch

    rng = np.random.default_rng(seed)
    pre = rec.preprocess
    shape = (pre.height,) if pre.channels == 1 else (pre.height, 3)
    arrays = [rng.integers(0, 256, size=(shape[0], w, *shape[1:]), dtype=np.uint8) for w in widths]
    return normalize_batch(arrays, pre.channels)


def torch_outputs(rec: Recognizer, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        lp = rec.model(torch.from_numpy(batch)).float().numpy()
        lengths = rec.model.output_lengths(torch.from_numpy(widths)).numpy()
    return lp, lengths


def max_log_prob_diff(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest |difference| over the valid frames; infinite when shapes or lengths differ."""
    if a[0].shape != b[0].shape or not np.array_equal(np.asarray(a[1]), np.asarray(b[1])):
        return float("inf")
    return max(float(np.abs(a[0][i, :n] - b[0][i, :n]).max()) for i, n in enumerate(a[1]))


def default_out(model: str | os.PathLike | Recognizer, suffix: str) -> Path:
    name = str(model.name if isinstance(model, Recognizer) else model)
    if name.startswith("builtin:"):
        return Path(name.split(":", 1)[1] + suffix)
    return Path(name).with_suffix(suffix)


def _atomic_write(out: Path, write) -> None:
    """``write(tmp_path)``, then rename into place (exporters open the file themselves)."""
    atomic_write(out, write_path=write)


def export_onnx(model: str | os.PathLike | Recognizer, out: str | os.PathLike | None = None,
                opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportResult:
    """Write ``model`` (a checkpoint path, ``builtin:NAME`` or a :class:`Recognizer`) as ONNX.

    ``verify`` (needs onnxruntime) compares ONNX Runtime with PyTorch on random
    images of several widths and refuses to write a file whose outputs differ.
    """
    try:
        import onnx
    except ImportError:
        raise CrnnError("ONNX export needs the onnx package: pip install onnx onnxruntime") from None
    if opset < 17:
        raise CrnnError(f"opset {opset} is too old: use 17 or newer")
    rec = as_recognizer(model)
    out = Path(out) if out is not None else default_out(model, ".onnx")
    net = _WithLengths(rec.model.cpu().eval()).eval()
    batch, widths = example_batch(rec, widths=(96, 64))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation, GRU batch-size note (checked below)
        torch.onnx.export(
            net, (torch.from_numpy(batch), torch.from_numpy(widths)), buf, input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES), opset_version=opset, dynamo=False, do_constant_folding=True,
            dynamic_axes={"images": {0: "batch", 3: "width"}, "widths": {0: "batch"},
                          "log_probs": {0: "batch", 1: "time"}, "lengths": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    meta = export_metadata(rec)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, ensure_ascii=False)
    proto.producer_name, proto.producer_version = "crnn-ocr", __version__
    proto.doc_string = (f"CRNN text-line recognizer exported by crnn-ocr {__version__}; charset "
                        f"{rec.charset.chars!r}; see metadata_props['{METADATA_KEY}']")
    onnx.checker.check_model(proto)
    diff: list[float | None] = [None]

    def write(tmp: Path) -> None:
        onnx.save(proto, str(tmp))
        if verify:
            diff[0] = _verify_onnx(rec, tmp)

    _atomic_write(out, write)
    return ExportResult(out, "onnx", out.stat().st_size, diff[0])


def _verify_onnx(rec: Recognizer, path: Path) -> float | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        warnings.warn("onnxruntime is not installed: the ONNX export was not checked", stacklevel=3)
        return None
    from crnn.export.onnx_runtime import OnnxRecognizer

    return verify_export(rec, OnnxRecognizer.load(path, threads=1), "ONNX")


def verify_export(rec: Recognizer, exported, what: str) -> float:
    """Largest log-prob difference between ``exported`` (any backend with ``_forward``) and the PyTorch
    model on batches of other sizes and widths than traced; refuses (raises) above the tolerance."""
    worst = 0.0
    for ws in ((96, 61, 40), (23,), (200, 200)):  # batched, single, other batch size and width than traced
        batch, widths = example_batch(rec, ws)
        worst = max(worst, max_log_prob_diff(exported._forward(batch, widths), torch_outputs(rec, batch, widths)))
    if not worst <= VERIFY_TOLERANCE:
        raise ModelFileError(f"{rec.name}: the {what} export does not reproduce the PyTorch model (max log-prob "
                             f"difference {worst:.3g} > {VERIFY_TOLERANCE}); nothing written")
    return worst
