"""Export a checkpoint to TorchScript (``torch.jit.trace``).

The traced module has the same signature as the ONNX graph,
``(images (B, C, H, W) float32, widths (B,) int64) -> (log_probs (B, T, C), lengths (B,))``,
with dynamic batch and width, and carries the same JSON metadata as an extra file
(``crnn_ocr.json``), so it can be used from C++ (``torch::jit::load``) or Python
without this package's model code; :mod:`crnn.inference.torchscript` runs it back.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from crnn.export.common import ExportResult, as_recognizer, default_out, write_checked
from crnn.inference.fast import Traced, example_batch, export_metadata, verify_export
from crnn.inference.pytorch import Recognizer
from crnn.inference.torchscript import EXTRA_FILE, TorchScriptRecognizer


def export_torchscript(model: str | os.PathLike | Recognizer, out: str | os.PathLike | None = None,
                       verify: bool = True) -> ExportResult:
    """Trace ``model`` (checkpoint path, ``builtin:NAME`` or :class:`Recognizer`) and save it with its metadata."""
    rec = as_recognizer(model)
    dest = Path(out) if out is not None else default_out(model, ".torchscript.pt")
    net = Traced(rec.model.cpu().eval()).eval()
    batch, widths = example_batch(rec.preprocess, widths=(96, 64))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(net, (torch.from_numpy(batch), torch.from_numpy(widths)), check_trace=False)
    extra = {EXTRA_FILE: json.dumps(export_metadata(rec), ensure_ascii=False)}
    diff: list[float | None] = [None]

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(traced, str(tmp), _extra_files=extra)
        if verify:
            diff[0] = verify_export(rec, TorchScriptRecognizer.load(tmp), "TorchScript")

    write_checked(dest, write)
    return ExportResult(dest, "torchscript", dest.stat().st_size, diff[0])
