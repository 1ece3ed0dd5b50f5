"""The Python API: load a trained model and read text.

>>> from crnn import Recognizer                         # doctest: +SKIP
>>> rec = Recognizer.load("runs/exp1/best.pt")          # or "builtin:en"
>>> [p.text for p in rec.predict(["HELLO.png", pil_image, numpy_array])]
['HELLO', ...]

Everything the model needs (charset, preprocessing, architecture) comes from the
checkpoint, so predictions match what training validated.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from crnn.builtin import resolve_model_path
from crnn.charset import Charset
from crnn.config import Config
from crnn.data.images import Preprocess
from crnn.inference import resolve_device, torch_forward
from crnn.predictor import BasePredictor, Prediction
from crnn.training.checkpoint import load_checkpoint, model_from_checkpoint


class Recognizer(BasePredictor):
    """A loaded PyTorch model with its charset and preprocessing."""

    def __init__(self, model: torch.nn.Module, charset: Charset, preprocess: Preprocess, config: Config,
                 device: str | torch.device = "cpu", name: str = "model", meta: dict | None = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.charset, self.preprocess, self.config, self.name = charset, preprocess, config, name
        self.meta = meta or {}

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Recognizer:
        """Load a checkpoint file or ``builtin:NAME``; never executes code from the file."""
        p = resolve_model_path(path)
        ckpt = load_checkpoint(p)
        model, charset, pre, cfg = model_from_checkpoint(ckpt, str(p))
        return cls(model, charset, pre, cfg, device, str(path), ckpt.get("meta", {}))

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return torch_forward(self.model, self.device)(batch, widths)


__all__ = ["Recognizer", "Prediction"]
