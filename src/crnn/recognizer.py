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
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples
from crnn.errors import DataError
from crnn.inference import torch_forward
from crnn.metrics import TextMetrics
from crnn.predictor import BasePredictor, Prediction, make_decoder
from crnn.training.checkpoint import load_checkpoint, model_from_checkpoint


class Recognizer(BasePredictor):
    """A loaded PyTorch model with its charset and preprocessing."""

    def __init__(self, model: torch.nn.Module, charset: Charset, preprocess: Preprocess, config: Config,
                 device: str | torch.device = "cpu", name: str = "model", meta: dict | None = None):
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
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

    def evaluate(self, data: str | os.PathLike, batch_size: int = 64, label_pattern: str | None = None,
                 beam: int = 0, lexicon=None) -> tuple[TextMetrics, Report, list[Prediction]]:
        """Score the model on a folder, labels file or LMDB; unreadable samples are skipped and reported.

        Labels with characters the model cannot output are kept (they count as
        errors, as they would in use) and listed in ``report.unknown_chars``.
        """
        source = open_source(data, label_pattern)
        report = Report(str(source.location))
        checked = list(check_samples(source, self.preprocess, None, report))
        if not checked:
            raise DataError(f"{source.location}: no usable sample to evaluate ({len(report.skipped)} skipped)")
        for c in checked:
            report.unknown_chars.update(self.charset.unknown(c.label))
        results, _ = self.run_arrays([c.array for c in checked], batch_size,
                                     make_decoder(self.charset, beam, lexicon))
        preds = [Prediction(self.charset.decode(r.indices), r.confidence, c.record.name, r.frames)
                 for c, r in zip(checked, results)]
        metrics = TextMetrics()
        metrics.update([c.label for c in checked], [p.text for p in preds], [p.name for p in preds],
                       [p.confidence for p in preds])
        return metrics, report, preds
