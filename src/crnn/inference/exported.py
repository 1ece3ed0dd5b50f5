"""What an exported model carries, and the recognizer around any exported network (torch-free).

``crnn export`` stores everything needed to use the file (charset, preprocessing, config and the
network's width geometry) as JSON under :data:`METADATA_KEY`: ONNX ``metadata_props`` or a TorchScript
extra file. :class:`ExportedRecognizer` reads it; subclasses only run the network.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from crnn.charset import Charset
from crnn.data.images import Preprocess
from crnn.errors import ModelFileError
from crnn.inference.base import BasePredictor

METADATA_KEY = "crnn_ocr"
"""The ``metadata_props`` key (ONNX) / extra file stem (TorchScript) holding the JSON metadata."""
EXPORT_FORMAT = "crnn-ocr-export"
EXPORT_VERSION = 1
INPUT_NAMES = ("images", "widths")
OUTPUT_NAMES = ("log_probs", "lengths")


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
        self.width_steps = [(int(s[0]), int(s[1])) for s in metadata["width_steps"]]
        self.name = name

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, C, H, W) float32 and (B,) int64 -> log-probs (B, T, C) float32 and lengths (B,)."""
        raise NotImplementedError


