"""Exporting trained models (ONNX, TorchScript) and running them without PyTorch.

Nothing here imports torch on ``import crnn.export``: the exporters load it when
called, and :class:`~crnn.export.onnx_runtime.OnnxRecognizer` never does.

>>> from crnn.export import export_onnx, OnnxRecognizer          # doctest: +SKIP
>>> export_onnx("runs/exp1/best.pt", "best.onnx")                # doctest: +SKIP
>>> OnnxRecognizer.load("best.onnx").predict(["line.png"])[0].text  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["export_onnx", "export_torchscript", "OnnxRecognizer", "TorchScriptRecognizer", "read_metadata"]


def __getattr__(name: str):
    if name == "export_onnx":
        from crnn.export.onnx import export_onnx

        return export_onnx
    if name in ("export_torchscript", "TorchScriptRecognizer"):
        from crnn.export import torchscript

        return getattr(torchscript, name)
    if name in ("OnnxRecognizer", "read_metadata"):
        from crnn.export import onnx_runtime

        return getattr(onnx_runtime, name)
    raise AttributeError(f"module 'crnn.export' has no attribute {name!r}")
