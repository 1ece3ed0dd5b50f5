"""The HTTP service (``crnn serve``): FastAPI + uvicorn, with limits and micro-batching.

>>> from crnn.serve import create_app, ServeSettings               # doctest: +SKIP
>>> app = create_app(Recognizer.load("best.pt"), ServeSettings(max_images=16))  # doctest: +SKIP

Importing :mod:`crnn.serve` is cheap; FastAPI is loaded with :mod:`crnn.serve.app`.
"""

from __future__ import annotations

__all__ = ["create_app", "ServeSettings", "MicroBatcher", "load_recognizer"]


def __getattr__(name: str):
    if name in ("create_app", "ServeSettings"):
        from crnn.serve import app

        return getattr(app, name)
    if name == "MicroBatcher":
        from crnn.serve.batching import MicroBatcher

        return MicroBatcher
    if name == "load_recognizer":
        from crnn.inference.load import load_recognizer

        return load_recognizer
    raise AttributeError(f"module 'crnn.serve' has no attribute {name!r}")
