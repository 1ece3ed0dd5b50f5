"""Export a checkpoint to TorchScript (``torch.jit.trace``) and run it back.

The traced module has the same signature as the ONNX graph,
``(images (B, C, H, W) float32, widths (B,) int64) -> (log_probs (B, T, C), lengths (B,))``,
with dynamic batch and width, and carries the same JSON metadata as an extra file
(``crnn_ocr.json``), so it can be used from C++ (``torch::jit::load``) or Python
without this package's model code.

Unlike a checkpoint, a TorchScript file is a program: only load files you trust.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn.errors import ModelFileError
from crnn.export.onnx import (
    ExportResult,
    _atomic_write,
    _WithLengths,
    as_recognizer,
    default_out,
    example_batch,
    export_metadata,
    verify_export,
)
from crnn.export.onnx_runtime import METADATA_KEY, ExportedRecognizer, parse_metadata
from crnn.recognizer import Recognizer

EXTRA_FILE = f"{METADATA_KEY}.json"


def export_torchscript(model: str | os.PathLike | Recognizer, out: str | os.PathLike | None = None,
                       verify: bool = True) -> ExportResult:
    """Trace ``model`` (checkpoint path, ``builtin:NAME`` or :class:`Recognizer`) and save it with its metadata."""
    rec = as_recognizer(model)
    out = Path(out) if out is not None else default_out(model, ".torchscript.pt")
    net = _WithLengths(rec.model.cpu().eval()).eval()
    batch, widths = example_batch(rec, widths=(96, 64))
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
            diff[0] = _verify(rec, tmp)

    _atomic_write(out, write)
    return ExportResult(out, "torchscript", out.stat().st_size, diff[0])


def _verify(rec: Recognizer, path: Path) -> float:
    return verify_export(rec, TorchScriptRecognizer.load(path), "TorchScript")


def read_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load a file written by :func:`export_torchscript`: the module (eval, CPU) and its metadata."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: model file not found")
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError / ValueError / zip errors for foreign files
        first = (str(e).splitlines() or [type(e).__name__])[0].split(". ")[0]  # drop torch's advice to itself
        raise ModelFileError(f"{p}: not a readable TorchScript file ({first[:160]})") from None
    return module.eval(), parse_metadata(extra[EXTRA_FILE] or None, str(p))


class TorchScriptRecognizer(ExportedRecognizer):
    """A model exported with ``crnn export --format torchscript``, with :class:`crnn.Recognizer`'s API."""

    backend = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, metadata: dict[str, Any], name: str = "model"):
        super().__init__(metadata, name)
        self.module = module

    @classmethod
    def load(cls, path: str | os.PathLike) -> TorchScriptRecognizer:
        module, meta = read_torchscript(path)
        return cls(module, meta, str(path))

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            lp, lengths = self.module(torch.from_numpy(batch), torch.from_numpy(widths.astype(np.int64)))
        return lp.float().numpy(), lengths.numpy()
