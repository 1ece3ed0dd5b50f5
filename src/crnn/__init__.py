"""crnn-ocr: train, evaluate, inspect, export and serve CRNN text-line recognizers.

``import crnn`` is cheap (no torch import): the heavy parts load on first use, so
``crnn predict --backend onnx`` can start without PyTorch.
"""

from __future__ import annotations

from crnn.version import __version__

__all__ = ["Recognizer", "Prediction", "Config", "Charset", "train", "__version__"]


def __getattr__(name: str):
    if name == "Recognizer":
        from crnn.inference.pytorch import Recognizer

        return Recognizer
    if name == "Prediction":
        from crnn.inference.base import Prediction

        return Prediction
    if name == "Config":
        from crnn.config import Config

        return Config
    if name == "Charset":
        from crnn.charset import Charset

        return Charset
    if name == "train":
        from crnn.training.loop import train

        return train
    raise AttributeError(f"module 'crnn' has no attribute {name!r}")
