"""Reading text with a trained model, whatever runs it.

- :mod:`.base` (torch-free): preprocess -> network -> decode, evaluation and the :class:`Prediction` type,
  shared by every runtime;
- :mod:`.pytorch`: :class:`Recognizer`, a checkpoint on PyTorch (or, on the CPU, on ONNX Runtime: the fast path);
- :mod:`.exported`, :mod:`.onnx`, :mod:`.torchscript`: files written by ``crnn export``;
- :mod:`.fast`: tracing a recognizer into a graph and checking it against PyTorch;
- :mod:`.zoo`: the models shipped in the package (``builtin:NAME``);
- :mod:`.load`: one entry point for any model path.

Importing this package imports no torch.
"""

from __future__ import annotations

_EXPORTS = {
    "Prediction": "base", "BasePredictor": "base", "Recognizer": "pytorch", "OnnxRecognizer": "onnx",
    "TorchScriptRecognizer": "torchscript", "load_recognizer": "load", "builtin_models": "zoo",
    "resolve_model_path": "zoo", "read_metadata": "onnx",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"crnn.inference.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'crnn.inference' has no attribute {name!r}")
