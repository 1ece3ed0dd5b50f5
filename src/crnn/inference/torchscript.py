"""Run a model exported with ``crnn export --format torchscript``.

Unlike a checkpoint, a TorchScript file is a program: only load files you trust.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn.errors import ModelFileError
from crnn.inference.exported import METADATA_KEY, ExportedRecognizer, parse_metadata

EXTRA_FILE = f"{METADATA_KEY}.json"
"""The extra file of a TorchScript archive that holds the export metadata."""


def read_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load a file written by :func:`crnn.export.export_torchscript`: the module (eval, CPU) and its metadata."""
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
