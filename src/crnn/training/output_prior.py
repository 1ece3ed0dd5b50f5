"""Start a CTC model's output layer at the classes' frequencies (``train.output_bias = "prior"``).

A freshly drawn output layer gives every class about the same probability, so the first steps of a CTC
run go into learning that most time steps are blank and that ``e`` is commoner than ``q``, before the
model learns anything about the images (the first half of the blank plateau). Setting the bias to the log
of each class's share of the time steps in the training labels, the blank taking the steps the characters
leave, starts the model where those steps would have taken it (the usual "initialise the last layer's
bias to the class prior"; the weights stay as drawn, so nothing about the images is assumed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from crnn.charset import BLANK


def log_prior(targets: Sequence[Sequence[int]], widths: Iterable[int], output_length: Callable[[int], int],
              num_classes: int) -> torch.Tensor:
    """(num_classes,) log share of the time steps each class takes: characters by their counts in
    ``targets``, the blank the rest (at least 1 %). Classes that never occur get a hundredth of the
    rarest one's count, so they are unlikely but not impossible."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for t in targets:
        np.add.at(counts, np.asarray(t, dtype=np.int64), 1.0)
    frames = float(sum(output_length(int(w)) for w in widths))
    chars = counts.sum()
    seen = counts[counts > 0]
    counts[counts == 0] = (seen.min() if seen.size else 1.0) / 100
    counts[BLANK] = max(frames - chars, 0.01 * frames)
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def set_output_prior(fc: torch.nn.Linear, prior: torch.Tensor) -> None:
    with torch.no_grad():
        fc.bias.copy_(prior)
