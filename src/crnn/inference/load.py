"""Open any model path with the right runtime: a checkpoint or ``builtin:NAME``, an ``.onnx`` file, or a
``.torchscript.pt`` file. Shared by ``crnn predict``, ``eval`` and ``serve``, so all accept the same paths."""

from __future__ import annotations

BACKENDS = ("auto", "torch", "onnx", "torchscript")


def load_recognizer(model: str, backend: str = "auto", device: str = "cpu", threads: int | None = None):
    """A recognizer for ``model``.

    ``auto``: an ``.onnx`` file runs on ONNX Runtime (torch is never imported), a ``.torchscript.pt`` file on
    TorchScript, and a checkpoint on ONNX Runtime too when it is installed and the device is the CPU (the
    fast path: same texts, see :class:`~crnn.Recognizer`), else PyTorch. ``torch`` keeps a checkpoint on
    PyTorch; ``onnx`` asks for ONNX Runtime for a checkpoint as well as for an ``.onnx`` file.
    """
    name = str(model).lower()
    kind = "onnx" if name.endswith(".onnx") else "torchscript" if name.endswith(".torchscript.pt") else "checkpoint"
    if kind == "onnx":
        from crnn.inference.onnx import OnnxRecognizer

        return OnnxRecognizer.load(model, threads=threads)
    import torch

    if threads:
        torch.set_num_threads(threads)
    if kind == "torchscript" or backend == "torchscript":
        from crnn.inference.torchscript import TorchScriptRecognizer

        return TorchScriptRecognizer.load(model)
    from crnn.inference.pytorch import Recognizer

    return Recognizer.load(model, device=device, runtime=backend, threads=threads)
