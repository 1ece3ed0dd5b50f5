"""Run an exported ``.onnx`` model with ONNX Runtime: no PyTorch needed, or imported.

The ``.onnx`` file is self-contained: ``crnn export`` stores the charset, the
preprocessing, the training config and how the network shrinks image widths as
JSON in the model's ``metadata_props`` (key :data:`METADATA_KEY`), so

>>> rec = OnnxRecognizer.load("best.onnx")                      # doctest: +SKIP
>>> [p.text for p in rec.predict(["HELLO.png"])]                # doctest: +SKIP
['HELLO']

gives the same texts as :class:`crnn.Recognizer` on the checkpoint it came from:
the images go through the same :mod:`crnn.data.images` code, are batched the same
way (sorted by width, padded by repeating the last column), and the log-probs
are decoded by the same NumPy decoders.

The graph takes ``images`` (B, C, H, W) float32 in [-1, 1] and ``widths`` (B,)
int64 (each image's width before padding) and returns ``log_probs`` (B, T, C)
and ``lengths`` (B,) int64, the valid time steps of each image; batch size and
width are dynamic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.errors import CrnnError, ModelFileError
from crnn.predictor import BasePredictor, Prediction, width_batches  # noqa: F401  (re-exported)

METADATA_KEY = "crnn_ocr"
"""The ``metadata_props`` key (ONNX) / extra file stem (TorchScript) holding the JSON metadata."""
EXPORT_FORMAT = "crnn-ocr-export"
EXPORT_VERSION = 1
INPUT_NAMES = ("images", "widths")
OUTPUT_NAMES = ("log_probs", "lengths")


def output_lengths(widths: np.ndarray, width_steps: Sequence[Sequence[int]]) -> np.ndarray:
    """Time steps for images of the given widths: ``width_steps`` is the metadata's list of
    ``[subtract, divide]`` pairs, one per conv stage (``CRNN.output_lengths`` in NumPy)."""
    w = np.asarray(widths, dtype=np.int64).copy()
    for sub, div in width_steps:
        w = w - int(sub)
        if int(div) > 1:
            w = np.floor_divide(w, int(div))
    return np.maximum(w, 1)


def parse_metadata(text: str | bytes | None, name: str) -> dict[str, Any]:
    """Decode and check the JSON metadata of an exported model."""
    if text is None:
        raise ModelFileError(f"{name}: no '{METADATA_KEY}' metadata: not a model exported by `crnn export`")
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{name}: its '{METADATA_KEY}' metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise ModelFileError(f"{name}: metadata is not from `crnn export` (no '{EXPORT_FORMAT}' marker)")
    version = meta.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise ModelFileError(f"{name}: export format version {version} is newer than this toolkit understands "
                             f"({EXPORT_VERSION}); upgrade crnn-ocr")
    for key in ("charset", "preprocess", "width_steps", "num_classes"):
        if key not in meta:
            raise ModelFileError(f"{name}: export metadata is missing '{key}'")
    if meta["num_classes"] != len(meta["charset"]) + 1:
        raise ModelFileError(f"{name}: charset has {len(meta['charset'])} characters but the model has "
                             f"{meta['num_classes']} classes (expected charset + blank)")
    return meta


class ExportedRecognizer(BasePredictor):
    """Preprocessing, batching and decoding around an exported network; subclasses run the network.

    Same ``prepare`` / ``predict`` / ``log_probs`` API as :class:`crnn.Recognizer`.
    """

    backend = "exported"

    def __init__(self, metadata: dict[str, Any], name: str = "model"):
        self.metadata = metadata
        self.charset = Charset(metadata["charset"])
        self.preprocess = Preprocess.from_dict(metadata["preprocess"])
        self.config: dict[str, Any] = metadata.get("config", {})
        self.meta: dict[str, Any] = metadata.get("meta", {})
        self.width_steps = [tuple(s) for s in metadata["width_steps"]]
        self.name = name

    # -- subclasses -------------------------------------------------------------------------------
    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, C, H, W) float32 and (B,) int64 -> log-probs (B, T, C) float32 and lengths (B,)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------
    def output_lengths(self, widths: np.ndarray) -> np.ndarray:
        return output_lengths(widths, self.width_steps)


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise CrnnError("the ONNX backend needs onnxruntime: pip install onnxruntime") from None
    return onnxruntime


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``crnn export`` metadata of an ``.onnx`` file (checked), without building a session."""
    ort = _import_onnxruntime()
    sess = _session(ort, Path(path), threads=1)
    return parse_metadata(sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY), str(path))


def _session(ort, path: Path, threads: int | None, providers: Sequence[str] | None = None):
    if str(path).startswith("builtin:"):
        raise ModelFileError(f"{path}: built-in models are PyTorch checkpoints; export one first: "
                             f"crnn export {path} --format onnx --out MODEL.onnx")
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give an .onnx file")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or 0)  # 0: ONNX Runtime's default (one per physical core)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        first = (str(e).splitlines() or [type(e).__name__])[0]
        hint = " (a PyTorch checkpoint? export it first: crnn export MODEL --format onnx)" \
            if path.suffix in (".pt", ".pth") else ""
        raise ModelFileError(f"{path}: not a readable ONNX model{hint}: {first[:200]}") from None


class OnnxRecognizer(ExportedRecognizer):
    """An exported ``.onnx`` model on ONNX Runtime's CPU provider."""

    backend = "onnx"

    def __init__(self, session, metadata: dict[str, Any], name: str = "model"):
        super().__init__(metadata, name)
        self.session = session
        names = {i.name for i in session.get_inputs()}
        if "images" not in names:
            raise ModelFileError(f"{name}: the ONNX graph has no 'images' input (inputs: {sorted(names)})")
        self._feed_widths = "widths" in names
        self._out_names = [o.name for o in session.get_outputs()]

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = None,
             providers: Sequence[str] | None = None) -> OnnxRecognizer:
        """Open an ``.onnx`` file written by ``crnn export``.

        ``threads`` sets ONNX Runtime's intra-op threads (default: its own choice);
        ``providers`` defaults to ``["CPUExecutionProvider"]``.
        """
        ort = _import_onnxruntime()
        p = Path(path)
        sess = _session(ort, p, threads, providers)
        meta = parse_metadata(sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY), str(path))
        return cls(sess, meta, str(path))

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {"images": batch}
        if self._feed_widths:
            feed["widths"] = widths.astype(np.int64)
        outs = dict(zip(self._out_names, self.session.run(None, feed)))
        lp = np.asarray(outs.get("log_probs", next(iter(outs.values()))), dtype=np.float32)
        lengths = outs.get("lengths")
        if lengths is None:
            lengths = self.output_lengths(widths)
        return lp, np.minimum(np.asarray(lengths, dtype=np.int64), lp.shape[1])
