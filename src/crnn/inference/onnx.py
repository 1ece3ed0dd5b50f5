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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crnn.errors import CrnnError, ModelFileError
from crnn.inference.exported import METADATA_KEY, ExportedRecognizer, parse_metadata
from crnn.models.geometry import output_lengths


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


def session_options(ort, threads: int | None):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or 0)  # 0: ONNX Runtime's default (one per physical core)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


def _session(ort, path: Path, threads: int | None, providers: Sequence[str] | None = None):
    if str(path).startswith("builtin:"):
        raise ModelFileError(f"{path}: built-in models are PyTorch checkpoints; export one first: "
                             f"crnn export {path} --format onnx --out MODEL.onnx")
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give an .onnx file")
    opts = session_options(ort, threads)
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

    @classmethod
    def from_bytes(cls, model: bytes, metadata: dict[str, Any], name: str = "model",
                   threads: int | None = None) -> OnnxRecognizer:
        """A session over an ONNX graph held in memory (a PyTorch :class:`~crnn.Recognizer`'s fast path)."""
        ort = _import_onnxruntime()
        sess = ort.InferenceSession(model, sess_options=session_options(ort, threads),
                                    providers=["CPUExecutionProvider"])
        return cls(sess, metadata, name)

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {"images": batch}
        if self._feed_widths:
            feed["widths"] = widths.astype(np.int64)
        outs = dict(zip(self._out_names, self.session.run(None, feed)))
        lp = np.asarray(outs.get("log_probs", next(iter(outs.values()))), dtype=np.float32)
        lengths = outs.get("lengths")
        if lengths is None:
            lengths = output_lengths(widths, self.width_steps)
        return lp, np.minimum(np.asarray(lengths, dtype=np.int64), lp.shape[1])
