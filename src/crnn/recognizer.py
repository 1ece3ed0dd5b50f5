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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from crnn.builtin import resolve_model_path
from crnn.charset import Charset
from crnn.config import Config
from crnn.data.images import ImageLike, Preprocess, prepare_image
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.types import DecodeResult
from crnn.errors import DataError
from crnn.inference import run_model
from crnn.metrics import TextMetrics
from crnn.training.checkpoint import load_checkpoint, model_from_checkpoint


@dataclass
class Prediction:
    """One image's result. ``error`` is set (and ``text`` empty) when the image could not be read."""

    text: str
    confidence: float
    name: str = ""
    frames: tuple[int, ...] = field(default=(), repr=False)
    error: str | None = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "text": self.text, "confidence": round(self.confidence, 6)}
        if self.error:
            d["error"] = self.error
        return d


class Recognizer:
    """A loaded model with its charset and preprocessing."""

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

    def _decoder(self, beam: int = 0, lexicon=None) -> Callable[[np.ndarray], DecodeResult]:
        if lexicon is not None:
            from crnn.decoding.lexicon import Lexicon

            lex = lexicon if isinstance(lexicon, Lexicon) else Lexicon.from_file(lexicon, self.charset)
            return lex.decode
        if beam and beam > 1:
            from crnn.decoding.beam import beam_search

            return lambda lp: beam_search(lp, beam_width=beam)
        return greedy_decode

    def prepare(self, images: Sequence[ImageLike], names: Sequence[str] | None = None,
                on_error: str = "raise") -> tuple[list[np.ndarray | None], list[str | None]]:
        """Preprocess images exactly as in training; returns arrays and, per image, an error or None."""
        arrays: list[np.ndarray | None] = []
        errors: list[str | None] = []
        for i, img in enumerate(images):
            name = names[i] if names else None
            try:
                arrays.append(prepare_image(img, self.preprocess, name))
                errors.append(None)
            except DataError as e:
                if on_error == "raise":
                    raise
                arrays.append(None)
                errors.append(str(e))
        return arrays, errors

    def predict(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 64, beam: int = 0,
                lexicon=None, names: Sequence[str] | None = None, on_error: str = "raise") -> list[Prediction]:
        """Read the text of each image (paths, bytes, PIL images or HxW[xC] arrays).

        ``on_error="report"`` returns a :class:`Prediction` with ``error`` set for an
        unreadable image instead of raising :class:`~crnn.errors.DataError`.
        """
        if isinstance(images, (str, os.PathLike, bytes, np.ndarray)) or hasattr(images, "getpixel"):
            images = [images]  # type: ignore[list-item]
        images = list(images)  # type: ignore[arg-type]
        if names is None:
            names = [str(x) if isinstance(x, (str, os.PathLike)) else f"image{i}" for i, x in enumerate(images)]
        arrays, errors = self.prepare(images, names, on_error)
        ok = [i for i, a in enumerate(arrays) if a is not None]
        results, _ = run_model(self.model, [arrays[i] for i in ok], self.preprocess.channels, self.device,
                               batch_size, self._decoder(beam, lexicon))
        out = [Prediction("", 0.0, names[i], error=errors[i]) for i in range(len(images))]
        for i, r in zip(ok, results):
            out[i] = Prediction(self.charset.decode(r.indices), r.confidence, names[i], r.frames)
        return out

    def log_probs(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Per-image (T, C) log-probabilities, for decoders and visualisation."""
        arrays, _ = self.prepare(list(images))
        _, lps = run_model(self.model, arrays, self.preprocess.channels, self.device, keep_log_probs=True)
        return lps  # type: ignore[return-value]

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
        results, _ = run_model(self.model, [c.array for c in checked], self.preprocess.channels, self.device,
                               batch_size, self._decoder(beam, lexicon))
        preds = [Prediction(self.charset.decode(r.indices), r.confidence, c.record.name, r.frames)
                 for c, r in zip(checked, results)]
        metrics = TextMetrics()
        metrics.update([c.label for c in checked], [p.text for p in preds], [p.name for p in preds],
                       [p.confidence for p in preds])
        return metrics, report, preds
