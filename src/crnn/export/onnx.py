"""Export a checkpoint to a self-contained ONNX file (dynamic batch and width).

The graph (opset 17 by default, legacy TorchScript-based exporter) takes
``images`` (B, C, H, W) float32 in [-1, 1] and ``widths`` (B,) int64 and returns
``log_probs`` (B, T, C) and ``lengths`` (B,) int64. Everything needed to use the
file (charset, preprocessing, config, width geometry) is stored as JSON in
``metadata_props["crnn_ocr"]``; see :mod:`crnn.inference.onnx`.

After writing, the export is checked: ONNX Runtime and PyTorch are run on the
same batch of random images of different widths, and the file is only put in
place when their log-probs agree.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from crnn.export.common import ExportResult, as_recognizer, default_out, write_checked
from crnn.inference.fast import DEFAULT_OPSET, trace_onnx, verify_export
from crnn.inference.pytorch import Recognizer


def export_onnx(model: str | os.PathLike | Recognizer, out: str | os.PathLike | None = None,
                opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportResult:
    """Write ``model`` (a checkpoint path, ``builtin:NAME`` or a :class:`Recognizer`) as ONNX.

    ``verify`` (needs onnxruntime) compares ONNX Runtime with PyTorch on random
    images of several widths and refuses to write a file whose outputs differ.
    """
    rec = as_recognizer(model)
    dest = Path(out) if out is not None else default_out(model, ".onnx")
    proto = trace_onnx(rec, opset)
    diff: list[float | None] = [None]

    def write(tmp: Path) -> None:
        import onnx

        onnx.save(proto, str(tmp))
        if verify:
            diff[0] = _verify_onnx(rec, tmp)

    write_checked(dest, write)
    return ExportResult(dest, "onnx", dest.stat().st_size, diff[0])


def _verify_onnx(rec: Recognizer, path: Path) -> float | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        warnings.warn("onnxruntime is not installed: the ONNX export was not checked", stacklevel=3)
        return None
    from crnn.inference.onnx import OnnxRecognizer

    return verify_export(rec, OnnxRecognizer.load(path, threads=1), "ONNX")
