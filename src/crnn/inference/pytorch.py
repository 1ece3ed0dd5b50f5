"""The Python API: load a trained model and read text.

>>> from crnn import Recognizer                         # doctest: +SKIP
>>> rec = Recognizer.load("runs/exp1/best.pt")          # or "builtin:en"
>>> [p.text for p in rec.predict(["HELLO.png", pil_image, numpy_array])]
['HELLO', ...]

Everything the model needs (charset, preprocessing, architecture) comes from the
checkpoint, so predictions match what training validated.

On the CPU the network runs on ONNX Runtime when it is installed (``runtime="auto"``):
the model is traced once at load (about a second), checked against PyTorch, and then
reads 2-3x faster than PyTorch's step-by-step CPU RNN, with the same texts (see
BENCHMARKS.md). ``runtime="torch"`` keeps PyTorch; the PyTorch model stays available as
``.model`` either way (explanations, fine-tuning, export).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import torch

from crnn.charset import Charset
from crnn.checkpoint import load_checkpoint, model_from_checkpoint
from crnn.config import Config
from crnn.data.images import Preprocess
from crnn.decoding.types import DecodeResult
from crnn.devices import resolve_device
from crnn.errors import CrnnError
from crnn.inference.base import BasePredictor, Prediction, run_batches
from crnn.inference.zoo import resolve_model_path
from crnn.models.crnn import CRNN
from crnn.models.geometry import WidthSteps

RUNTIMES = ("auto", "torch", "onnx")


def torch_forward(model: CRNN, device: torch.device):
    """A :data:`crnn.inference.base.Forward` for a PyTorch model (eval mode, no autograd)."""

    @torch.inference_mode()
    def forward(batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model(torch.from_numpy(batch).to(device), torch.from_numpy(widths).to(device))
        return out.log_probs.float().cpu().numpy(), out.lengths.cpu().numpy()

    return forward


def run_model(model: CRNN, arrays: list[np.ndarray], channels: int, device: torch.device,
              batch_size: int = 64, decoder: Callable[[np.ndarray], DecodeResult] | None = None,
              keep_log_probs: bool = False) -> tuple[list[DecodeResult], list[np.ndarray] | None]:
    """Decode every image (uint8 arrays at model height); optionally keep each one's (T, C) log-probs."""
    was_training = model.training
    model.eval()
    try:
        return run_batches(torch_forward(model, device), arrays, channels, batch_size, decoder, keep_log_probs)
    finally:
        model.train(was_training)


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class Recognizer(BasePredictor):
    """A loaded PyTorch model with its charset and preprocessing."""

    def __init__(self, model: CRNN, charset: Charset, preprocess: Preprocess, config: Config,
                 device: str | torch.device = "cpu", name: str = "model", meta: dict | None = None,
                 runtime: str = "torch", threads: int | None = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.charset, self.preprocess, self.config, self.name = charset, preprocess, config, name
        self.meta = meta or {}
        self._fast: BasePredictor | None = None  # tracing reads this recognizer, so it must be whole first
        self._fast = self._fast_twin(runtime, threads)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", runtime: str = "auto",
             threads: int | None = None) -> Recognizer:
        """Load a checkpoint file or ``builtin:NAME``; never executes code from the file.

        ``runtime``: ``auto`` (ONNX Runtime on the CPU when installed, else PyTorch), ``torch`` or ``onnx``;
        ``threads``: ONNX Runtime's intra-op threads (default: as many as torch uses).
        """
        p = resolve_model_path(path)
        ckpt = load_checkpoint(p)
        model, charset, pre, cfg = model_from_checkpoint(ckpt, str(p))
        return cls(model, charset, pre, cfg, device, str(path), ckpt.get("meta", {}), runtime, threads)

    @property
    def runtime(self) -> str:
        """What runs the network: ``torch``, or ``onnx`` (ONNX Runtime, traced from this model at load)."""
        return "torch" if self._fast is None else "onnx"

    @property
    def backend(self) -> str:
        """:attr:`runtime`, under the name the other recognizers and the service use."""
        return self.runtime

    @property
    def width_steps(self) -> WidthSteps:  # type: ignore[override]
        return self.model.width_steps

    def _fast_twin(self, runtime: str, threads: int | None) -> BasePredictor | None:
        """The ONNX Runtime twin that runs the network, or None for PyTorch."""
        if runtime not in RUNTIMES:
            raise CrnnError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if runtime == "torch" or (runtime == "auto" and (self.device.type != "cpu" or not onnxruntime_available())):
            return None
        if self.device.type != "cpu":
            raise CrnnError(f"runtime 'onnx' runs on the CPU; this recognizer is on {self.device}")
        from crnn.inference.fast import onnx_twin

        try:  # as many threads as torch would use (OMP_NUM_THREADS, torch.set_num_threads): one knob for both
            return onnx_twin(self, threads or torch.get_num_threads())
        except CrnnError as e:
            if runtime == "onnx":
                raise
            warnings.warn(f"{self.name}: ONNX Runtime not used ({e}); running on PyTorch", stacklevel=3)
            return None

    def _forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._fast is not None:
            return self._fast._forward(batch, widths)
        return self.torch_forward(batch, widths)

    def torch_forward(self, batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The PyTorch model's outputs, whatever the runtime (what exports are checked against)."""
        return torch_forward(self.model, self.device)(batch, widths)


__all__ = ["Recognizer", "Prediction", "run_model", "torch_forward"]
