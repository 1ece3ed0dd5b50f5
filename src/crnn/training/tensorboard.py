"""Optional TensorBoard logging of the per-epoch metrics (the same row that goes to ``metrics.csv``).

>>> tb = TensorBoardLogger("runs/exp1")        # doctest: +SKIP  (writes runs/exp1/tensorboard/)
>>> tb.log_epoch({"epoch": 1, "step": 15, "train_loss": 2.5, "val_accuracy": 0.1, "lr": 1e-3})  # doctest: +SKIP
>>> tb.close()                                  # doctest: +SKIP

Then ``tensorboard --logdir runs``. Needs the ``tensorboard`` package
(``pip install tensorboard``); without it the constructor raises a one-line
:class:`~crnn.errors.CrnnError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from crnn.errors import CrnnError

# metrics.csv column -> TensorBoard tag
TAGS = {
    "train_loss": "train/loss",
    "lr": "train/learning_rate",
    "images_per_s": "train/images_per_s",
    "val_accuracy": "val/word_accuracy",
    "val_accuracy_nocase": "val/word_accuracy_nocase",
    "val_cer": "val/cer",
    "elapsed_s": "time/elapsed_s",
    "epoch": "time/epoch",
}


def _summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or a clear error when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CrnnError("TensorBoard logging needs the 'tensorboard' package: pip install tensorboard "
                        "(metrics.csv and curves.png are written without it)") from None
    return SummaryWriter


class TensorBoardLogger:
    """Writes each epoch's metrics as TensorBoard scalars under ``run_dir/tensorboard``.

    The x axis is the optimizer ``step`` of the row (falls back to the epoch), so
    resumed runs continue their curves instead of overwriting them.
    """

    def __init__(self, run_dir: str | os.PathLike, subdir: str = "tensorboard"):
        writer_cls = _summary_writer_class()
        self.log_dir = Path(run_dir) / subdir
        self.writer = writer_cls(log_dir=str(self.log_dir))

    def log_epoch(self, row: dict) -> None:
        """Log one metrics row (the dict the training loop writes to ``metrics.csv``); empty values are skipped."""
        step = row.get("step")
        if step is None:
            step = row.get("epoch") or 0
        step = int(step)
        for key, tag in TAGS.items():
            value = row.get(key)
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if value == value:  # not NaN
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def log_image(self, tag: str, png: bytes, step: int) -> None:
        """Add a PNG (e.g. :func:`crnn.insight.visualize.explanation_png` of a fixed sample) as an image."""
        import io

        import numpy as np
        from PIL import Image

        array = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        self.writer.add_image(tag, array, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["TensorBoardLogger"]
