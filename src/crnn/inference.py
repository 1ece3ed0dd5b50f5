"""Batched forward passes over preprocessed images, shared by validation, eval and predict.

Images are sorted by width and batched, so each batch carries little padding,
then results are returned in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from crnn.data.images import normalize_batch
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.types import DecodeResult


def width_batches(widths: list[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches of similar width (sorted), covering every index once."""
    order = np.argsort(np.asarray(widths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def run_model(model: torch.nn.Module, arrays: list[np.ndarray], channels: int, device: torch.device,
              batch_size: int = 64, decoder: Callable[[np.ndarray], DecodeResult] | None = None,
              keep_log_probs: bool = False) -> tuple[list[DecodeResult], list[np.ndarray] | None]:
    """Decode every image (uint8 arrays at model height); optionally return each one's (T, C) log-probs."""
    decoder = decoder or greedy_decode
    was_training = model.training
    model.eval()
    results: list[DecodeResult | None] = [None] * len(arrays)
    all_lp: list[np.ndarray | None] | None = [None] * len(arrays) if keep_log_probs else None
    try:
        for idx in width_batches([a.shape[1] for a in arrays], batch_size):
            batch, widths = normalize_batch([arrays[i] for i in idx], channels)
            x = torch.from_numpy(batch).to(device)
            lp = model(x).float().cpu().numpy()
            lengths = model.output_lengths(torch.from_numpy(widths)).numpy()
            for j, i in enumerate(idx):
                m = lp[j, : lengths[j]]
                results[i] = decoder(m)
                if all_lp is not None:
                    all_lp[i] = m
    finally:
        model.train(was_training)
    return results, all_lp  # type: ignore[return-value]
