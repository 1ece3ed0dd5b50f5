"""Running a PyTorch CRNN over preprocessed images (validation during training, :class:`~crnn.Recognizer`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from crnn.decoding.types import DecodeResult
from crnn.errors import CrnnError
from crnn.predictor import run_batches


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; a device this machine lacks is a one-line error."""
    if isinstance(name, torch.device):
        dev = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            raise CrnnError(f"device {name!r} is not a device name (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CrnnError(f"device {str(name)!r} asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CrnnError(f"device {str(name)!r} asked for, but this machine has {torch.cuda.device_count()} "
                            "CUDA device(s)")
    elif dev.type not in ("cpu", "mps"):
        raise CrnnError(f"device {str(name)!r} is not supported here (use auto, cpu, cuda or cuda:N)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise CrnnError(f"device {str(name)!r} asked for, but MPS is not available on this machine")
    return dev


def torch_forward(model: torch.nn.Module, device: torch.device):
    """A :data:`crnn.predictor.Forward` for a PyTorch model (eval mode, no autograd)."""

    @torch.inference_mode()
    def forward(batch: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lp = model(torch.from_numpy(batch).to(device)).float().cpu().numpy()
        return lp, model.output_lengths(torch.from_numpy(widths)).numpy()

    return forward


def run_model(model: torch.nn.Module, arrays: list[np.ndarray], channels: int, device: torch.device,
              batch_size: int = 64, decoder: Callable[[np.ndarray], DecodeResult] | None = None,
              keep_log_probs: bool = False) -> tuple[list[DecodeResult], list[np.ndarray] | None]:
    """Decode every image (uint8 arrays at model height); optionally keep each one's (T, C) log-probs."""
    was_training = model.training
    model.eval()
    try:
        return run_batches(torch_forward(model, device), arrays, channels, batch_size, decoder, keep_log_probs)
    finally:
        model.train(was_training)
