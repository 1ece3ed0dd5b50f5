"""What every recognizer shares, whatever runs the network (PyTorch, ONNX Runtime, TorchScript).

Torch-free on purpose: ``crnn predict --backend onnx`` and the ONNX service import
this, not torch. A backend only supplies ``_forward(batch, widths) -> (log_probs,
lengths)`` and its model's ``width_steps`` (:mod:`crnn.models.geometry`); preprocessing,
width-bucketed batching, decoding, evaluation and the result type live here once, so all
backends read the same images the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from crnn.charset import Charset
from crnn.data.images import ImageLike, Preprocess, normalize_batch, preprocess_image
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.types import DecodeResult
from crnn.errors import ConfigError, CrnnError, DataError
from crnn.metrics import TextMetrics
from crnn.models.geometry import WidthSteps, frame_centres

Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(B, C, H, W) float32 batch and (B,) widths -> (B, T, C) log-probs and (B,) output lengths."""


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


class Evaluation(NamedTuple):
    """What :meth:`BasePredictor.evaluate` returns (unpacks as ``metrics, report, predictions``)."""

    metrics: TextMetrics
    report: Report
    """The samples that could not be read, and label characters outside the model's charset."""
    predictions: list[Prediction]

    def summary(self, worst: int = 10) -> dict:
        """The JSON summary of ``crnn eval --json``: the metrics, what was skipped and why, and label
        characters the model cannot output."""
        out = self.metrics.summary(worst=worst)
        out["skipped"] = len(self.report.skipped)
        out["skipped_by_reason"] = dict(self.report.reasons())
        if self.report.unknown_chars:
            out["labels_with_chars_outside_model_charset"] = dict(self.report.unknown_chars)
        return out


def width_batches(widths: Sequence[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches of similar width (sorted), covering every index once."""
    order = np.argsort(np.asarray(widths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), max(1, batch_size))]


def run_batches(forward: Forward, arrays: list[np.ndarray], channels: int, batch_size: int = 64,
                decoder: Callable[[np.ndarray], DecodeResult] | None = None, keep_log_probs: bool = False
                ) -> tuple[list[DecodeResult], list[np.ndarray] | None]:
    """Decode uint8 images (model height) in width-bucketed batches; results in the input order."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise CrnnError(f"batch size must be a whole number of at least 1, got {batch_size!r}")
    decoder = decoder or greedy_decode
    results: list[DecodeResult | None] = [None] * len(arrays)
    all_lp: list[np.ndarray | None] | None = [None] * len(arrays) if keep_log_probs else None
    for idx in width_batches([a.shape[1] for a in arrays], batch_size):
        batch, widths = normalize_batch([arrays[i] for i in idx], channels)
        lp, lengths = forward(batch, widths)
        for j, i in enumerate(idx):
            m = lp[j, : int(lengths[j])]
            results[i] = decoder(m)
            if all_lp is not None:
                all_lp[i] = m
    return results, all_lp  # type: ignore[return-value]


def refuse_lexicon_with_lm(lexicon, lm) -> None:
    """One decoder at a time: a lexicon already restricts the reading to its words."""
    if lexicon is not None and lm is not None:
        raise ConfigError("give a lexicon or a language model, not both (a lexicon already restricts the "
                          "reading to its words)")


def make_decoder(charset: Charset, beam: int = 0, lexicon=None, lm=None) -> Callable[[np.ndarray], DecodeResult]:
    """Greedy, prefix beam search (``beam > 1``), beam search fused with a character language model (``lm``:
    ``"en"``, a word-list path, a :class:`~crnn.decoding.charlm.CharLM` or an
    :class:`~crnn.decoding.charlm.LMScorer` with its own weight) or lexicon-constrained decoding (a word-list
    path or Lexicon). A lexicon and a language model together are refused: the lexicon already decides."""
    refuse_lexicon_with_lm(lexicon, lm)
    if lexicon is not None:
        from crnn.decoding.lexicon import Lexicon

        lex = lexicon if isinstance(lexicon, Lexicon) else Lexicon.from_file(lexicon, charset)
        return lex.decode
    if lm is not None:
        from crnn.decoding.beam import beam_search
        from crnn.decoding.charlm import LM_PRUNE, LMScorer, lm_beam_width, load_lm

        scorer = lm if isinstance(lm, LMScorer) else LMScorer(load_lm(lm), charset)
        width = lm_beam_width(beam)
        return lambda lp: beam_search(lp, beam_width=width, lm=scorer, prune=LM_PRUNE)
    if beam and beam > 1:
        from crnn.decoding.beam import beam_search

        return lambda lp: beam_search(lp, beam_width=beam)
    return greedy_decode


class BasePredictor:
    """Preprocess -> network -> decode, for any backend; subclasses implement :meth:`_forward`."""

    charset: Charset
    preprocess: Preprocess
    name: str
    width_steps: WidthSteps
    """How the network maps an image's width to time steps (``(subtract, divide)`` per conv stage)."""

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def frame_centres(self, width: int) -> np.ndarray:
        """Receptive-field centre, in input pixels, of each time step of a preprocessed image ``width`` wide."""
        return frame_centres(width, self.width_steps)

    @property
    def trained_label_pattern(self) -> str | None:
        """The ``data.label_pattern`` the model was trained with: :meth:`evaluate` reads folders with it
        unless told otherwise, so a model trained on ``HELLO_3.png``-style names scores such a folder right."""
        cfg = getattr(self, "config", None)
        data = cfg.get("data", {}) if isinstance(cfg, dict) else vars(getattr(cfg, "data", None) or {})
        return data.get("label_pattern") if isinstance(data, dict) else None

    def preprocess_images(self, images: Sequence[ImageLike], names: Sequence[str] | None = None,
                on_error: str = "raise") -> tuple[list[np.ndarray | None], list[str | None]]:
        """Preprocess images exactly as in training; returns arrays and, per image, an error or None."""
        arrays: list[np.ndarray | None] = []
        errors: list[str | None] = []
        for i, img in enumerate(images):
            name = names[i] if names else None
            try:
                arrays.append(preprocess_image(img, self.preprocess, name))
                errors.append(None)
            except DataError as e:
                if on_error == "raise":
                    raise
                arrays.append(None)
                errors.append(str(e))
        return arrays, errors

    def run_arrays(self, arrays: list[np.ndarray], batch_size: int = 64,
                   decoder: Callable[[np.ndarray], DecodeResult] | None = None,
                   keep_log_probs: bool = False) -> tuple[list[DecodeResult], list[np.ndarray] | None]:
        """Decode preprocessed uint8 arrays."""
        return run_batches(self._forward, arrays, self.preprocess.channels, batch_size, decoder, keep_log_probs)

    def predict(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 64, beam: int = 0,
                lexicon=None, names: Sequence[str] | None = None, on_error: str = "raise",
                lm=None) -> list[Prediction]:
        """Read the text of each image (paths, bytes, PIL images or HxW[xC] arrays).

        ``lm``: decode with a character language model (``"en"``, a word-list file, or a
        :class:`~crnn.decoding.charlm.CharLM` / :class:`~crnn.decoding.charlm.LMScorer`; :func:`make_decoder`).

        ``on_error="report"`` returns a :class:`Prediction` with ``error`` set for an
        unreadable image instead of raising :class:`~crnn.errors.DataError`.
        """
        if isinstance(images, (str, os.PathLike, bytes, np.ndarray)) or hasattr(images, "getpixel"):
            images = [images]  # type: ignore[list-item]
        images = list(images)
        if names is None:
            names = [str(x) if isinstance(x, (str, os.PathLike)) else f"image{i}" for i, x in enumerate(images)]
        decoder = make_decoder(self.charset, beam, lexicon, lm)
        arrays, errors = self.preprocess_images(images, names, on_error)
        ok = [i for i, a in enumerate(arrays) if a is not None]
        results, _ = self.run_arrays([arrays[i] for i in ok], batch_size, decoder)  # type: ignore[misc]
        out = [Prediction("", 0.0, names[i], error=errors[i]) for i in range(len(images))]
        for i, r in zip(ok, results):
            out[i] = Prediction(self.charset.decode(r.indices), r.confidence, names[i], r.frames)
        return out

    def evaluate(self, data: str | os.PathLike, batch_size: int = 64, label_pattern: str | None = None,
                 beam: int = 0, lexicon=None, lm=None) -> Evaluation:
        """Score the model on a folder, labels file or LMDB; unreadable samples are skipped and reported.

        ``label_pattern`` defaults to the one the model was trained with (:attr:`trained_label_pattern`).

        Here, not on the PyTorch recognizer, so ``crnn eval`` scores an exported ``.onnx`` file exactly as
        it will be served. Labels with characters the model cannot output are kept (they count as
        errors, as they would in use) and listed in ``report.unknown_chars``.
        """
        decoder = make_decoder(self.charset, beam, lexicon, lm)  # a bad lexicon or LM fails before the data is read
        source = open_source(data, label_pattern if label_pattern is not None else self.trained_label_pattern)
        report = Report(str(source.location))
        checked = list(check_samples(source, self.preprocess, None, report))
        if not checked:
            raise DataError(f"{source.location}: no usable sample to evaluate ({len(report.skipped)} skipped)")
        for c in checked:
            report.unknown_chars.update(self.charset.unknown(c.label))
        results, _ = self.run_arrays([c.array for c in checked], batch_size, decoder)
        preds = [Prediction(self.charset.decode(r.indices), r.confidence, c.record.name, r.frames)
                 for c, r in zip(checked, results)]
        metrics = TextMetrics()
        metrics.update([c.label for c in checked], [p.text for p in preds], [p.name for p in preds],
                       [p.confidence for p in preds])
        return Evaluation(metrics, report, preds)

    def log_probs(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Per-image (T, C) log-probabilities, for decoders and visualisation."""
        arrays, _ = self.preprocess_images(list(images))
        _, lps = self.run_arrays(arrays, keep_log_probs=True)  # type: ignore[arg-type]
        return lps  # type: ignore[return-value]
