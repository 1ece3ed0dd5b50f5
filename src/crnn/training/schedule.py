"""Learning-rate schedules as functions of training progress.

Progress is the share of the run done: elapsed time over the time budget when
one is set (so a 10-minute run anneals fully in 10 minutes whatever the
machine's speed), otherwise steps over total steps. Being a pure function of
(progress, epoch), the schedule needs no state of its own to resume.
"""

from __future__ import annotations

import math

from crnn.config import TrainConfig


def learning_rate(cfg: TrainConfig, progress: float, epoch: int) -> float:
    """LR at ``progress`` in [0, 1] and 0-based ``epoch``.

    >>> from crnn.config import TrainConfig
    >>> c = TrainConfig(lr=1.0, schedule="step", step_epochs=20, gamma=0.8)
    >>> learning_rate(c, 0.5, 40)
    0.6400000000000001
    """
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":  # the original project: StepLR(step_size=20, gamma=0.8)
        return cfg.lr * cfg.gamma ** (epoch // max(cfg.step_epochs, 1))
    floor = cfg.lr * 0.01
    if cfg.schedule == "cosine":
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * p))
    if cfg.schedule == "onecycle":
        w = cfg.warmup
        if p < w:
            start = cfg.lr / 25
            return start + (cfg.lr - start) * p / w
        q = (p - w) / max(1 - w, 1e-9)
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * q))
    raise ValueError(f"train.schedule must be onecycle, cosine, step or constant, not {cfg.schedule!r}")
