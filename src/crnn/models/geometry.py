"""The model's geometry: how an image's width becomes time steps, and where each step looks.

Torch-free on purpose, so the exported-model runtimes (ONNX Runtime, no PyTorch) use the very
same arithmetic as :class:`~crnn.models.crnn.CRNN`. A conv stack is described by its
:class:`Block` list; its effect on width is a list of ``(subtract, divide)`` pairs, one per
stage (:func:`width_steps`): an unpadded ``k``-wide conv removes ``k - 1`` columns, a pool of
width ``s`` divides by ``s`` (rounding down). That list is stored in every exported model's
metadata, so a file carries its own geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

WidthSteps = list[tuple[int, int]]
"""``(subtract, divide)`` per conv stage."""


@dataclass(frozen=True)
class Block:
    """One conv stage: ``out`` channels, 3x3 (padded) or 2x2 (unpadded, the paper's last layer), BN, ReLU,
    then an optional max-pool."""

    out: int
    pool: tuple[int, int] | None = None
    separable: bool = False
    kernel: int = 3


def width_steps(blocks: Sequence[Block]) -> WidthSteps:
    """``(subtract, divide)`` per stage of ``blocks``."""
    return [(b.kernel - 1 if b.kernel != 3 else 0, b.pool[1] if b.pool else 1) for b in blocks]


def feature_height(blocks: Sequence[Block], height: int) -> int:
    """Rows left of an input ``height`` px high after the conv stack (each becomes part of a column's feature
    vector, so two input heights with the same value share every weight: a model trained at 48 px can be
    fine-tuned at 60). Below 1, the input is too small for the pooling stages."""
    h = height
    for b in blocks:
        if b.kernel != 3:
            h -= b.kernel - 1
        if b.pool:
            h //= b.pool[0]
    return h


def output_lengths(widths: Any, steps: Sequence[Sequence[int]]) -> Any:
    """Time steps for images of the given widths (before batch padding), at least 1 each.

    Written with operators only, so the same line works on a NumPy array and on a torch tensor
    (and traces into the ONNX graph): ``(w > 1) * (w - 1) + 1`` is ``max(w, 1)`` for integers.

    >>> output_lengths(np.array([160, 3, 1]), [(0, 2), (0, 2), (1, 1)])
    array([39,  1,  1])
    """
    w = widths
    for sub, div in steps:
        if int(sub):
            w = w - int(sub)
        if int(div) > 1:
            w = w // int(div)
    return (w > 1) * (w - 1) + 1


def output_length(width: int, steps: Sequence[Sequence[int]]) -> int:
    return int(output_lengths(np.array([width], dtype=np.int64), steps)[0])


def frame_centres(width: int, steps: Sequence[Sequence[int]], count: int | None = None) -> np.ndarray:
    """Receptive-field centre (input pixels, pixel ``i`` spanning ``[i, i+1)``) of each time step.

    Walks the stages backwards: a pool of width ``s`` maps column ``p`` to ``s * p + (s - 1) / 2``; an
    unpadded ``k``-wide conv shifts it by ``(k - 1) / 2``; a padded 3x3 conv keeps it. For the presets
    (width pooled by 4) step ``t`` lands on ``4 t + 2``, i.e. ``(t + 0.5) * W / T``.
    """
    if count is None:
        count = output_length(width, steps)
    p = np.arange(count, dtype=np.float64)
    for sub, div in reversed([tuple(s) for s in steps]):
        if int(div) > 1:
            p = p * int(div) + (int(div) - 1) / 2
        if int(sub):
            p = p + int(sub) / 2
    return np.clip(p + 0.5, 0.0, float(width))
