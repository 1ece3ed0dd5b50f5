"""The one result type every CTC decoder returns.

Decoders work on a single ``(T, C)`` matrix of log-probabilities (class 0 is the
CTC blank, class ``i`` is ``charset.chars[i - 1]``) and know nothing about text;
the :class:`~crnn.charset.Charset` turns ``indices`` into a string. Keeping them
NumPy-only lets the ONNX backend decode without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeResult:
    """A decoded label sequence.

    ``log_prob`` is the natural-log score of the sequence: the best path's
    probability for greedy decoding, the (approximate) sum over all CTC paths
    that collapse to ``indices`` for beam and lexicon decoding.
    ``frames`` holds, for each output index, the time step where it was emitted
    (used to place characters over the image columns that produced them).
    """

    indices: tuple[int, ...]
    log_prob: float
    frames: tuple[int, ...] = ()
    confidence_override: float | None = None

    @property
    def confidence(self) -> float:
        """In [0, 1]: the decoder's own measure if it gives one (greedy: its least certain frame),
        else the sequence probability ``exp(log_prob)``."""
        if self.confidence_override is not None:
            return self.confidence_override
        return math.exp(min(self.log_prob, 0.0))
