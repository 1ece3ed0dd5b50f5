"""Best-path (greedy) CTC decoding in NumPy."""

from __future__ import annotations

import numpy as np

from crnn.charset import BLANK
from crnn.decoding.types import DecodeResult


def greedy_decode(log_probs: np.ndarray, blank: int = BLANK) -> DecodeResult:
    """Take the most likely class per frame, merge repeats, drop blanks.

    The score is the best path's log-probability (sum of the per-frame maxima),
    a lower bound of the true sequence probability. The confidence is the
    probability of the least certain decision on that path (the smallest per-frame
    maximum, blanks included): it does not shrink with the length of the line, and a
    single doubtful character or gap pulls it down.

    >>> import numpy as np
    >>> lp = np.log(np.array([[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]) + 1e-12)
    >>> greedy_decode(lp).indices
    (1, 2)
    """
    if log_probs.ndim != 2:
        raise ValueError(f"expected a (T, C) matrix, got shape {log_probs.shape}")
    if log_probs.shape[0] == 0:
        return DecodeResult((), 0.0, ())
    best = log_probs.argmax(axis=1)
    top = log_probs[np.arange(len(best)), best]
    keep = best != blank
    keep[1:] &= best[1:] != best[:-1]
    frames = np.nonzero(keep)[0]
    return DecodeResult(tuple(int(i) for i in best[frames]), float(top.sum()), tuple(int(f) for f in frames),
                        confidence_override=float(np.exp(top.min())))
