"""Exporting trained models to self-contained files (ONNX, TorchScript); :mod:`crnn.inference` runs them.

Nothing here imports torch on ``import crnn.export``: the exporters load it when called.

>>> from crnn.export import export_onnx                          # doctest: +SKIP
>>> export_onnx("runs/exp1/best.pt", "best.onnx")                # doctest: +SKIP
>>> from crnn.inference import OnnxRecognizer                    # doctest: +SKIP
>>> OnnxRecognizer.load("best.onnx").predict(["line.png"])[0].text  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["export_onnx", "export_torchscript"]


def __getattr__(name: str):
    if name == "export_onnx":
        from crnn.export.onnx import export_onnx

        return export_onnx
    if name == "export_torchscript":
        from crnn.export.torchscript import export_torchscript

        return export_torchscript
    raise AttributeError(f"module 'crnn.export' has no attribute {name!r}")
