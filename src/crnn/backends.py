"""Pick the runtime for a model file: a checkpoint (PyTorch), an ONNX file or a TorchScript file.

Shared by ``crnn predict`` and ``crnn serve`` so both accept the same model paths.
"""

from __future__ import annotations


def load_backend(model: str, backend: str = "auto", device: str = "cpu", threads: int | None = None):
    """A recognizer for ``model``: ``onnx`` (ONNX Runtime, no torch), ``torchscript`` or ``torch``.

    ``auto`` picks ``onnx`` for ``.onnx`` files, ``torchscript`` for ``.torchscript.pt`` and ``torch`` otherwise.
    """
    if backend == "auto":
        name = str(model).lower()
        backend = "onnx" if name.endswith(".onnx") else "torchscript" if name.endswith(".torchscript.pt") else "torch"
    if backend == "onnx":
        from crnn.export.onnx_runtime import OnnxRecognizer

        return OnnxRecognizer.load(model, threads=threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    if backend == "torchscript":
        from crnn.export.torchscript import TorchScriptRecognizer

        return TorchScriptRecognizer.load(model)
    from crnn.recognizer import Recognizer

    return Recognizer.load(model, device=device)
