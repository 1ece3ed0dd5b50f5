"""Running a PyTorch CRNN over preprocessed images (validation during training, :class:`~crnn.Recognizer`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from crnn.decoding.types import DecodeResult
from crnn.predictor import run_batches


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
