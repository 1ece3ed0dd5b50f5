"""crnn.training.tensorboard: optional TensorBoard logging of the metric rows."""

from __future__ import annotations

import pytest

from crnn.errors import CrnnError
from crnn.training import tensorboard


def test_tensorboard_logger_logs_metric_rows(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir):
            calls.append(("init", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setattr(tensorboard, "_summary_writer_class", lambda: FakeWriter)
    with tensorboard.TensorBoardLogger(tmp_path) as tb:
        tb.log_epoch({"epoch": 2, "step": 30, "train_loss": 0.5, "val_accuracy": 0.75, "val_cer": None, "lr": 1e-3})
    assert calls[0] == ("init", str(tmp_path / "tensorboard"))
    logged = {c[0]: c[1:] for c in calls[1:-1]}
    assert logged == {"train/loss": (0.5, 30), "val/word_accuracy": (0.75, 30), "train/learning_rate": (1e-3, 30),
                      "time/epoch": (2.0, 30)}
    assert calls[-1] == ("close",)


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(CrnnError, match="pip install tensorboard"):
        tensorboard.TensorBoardLogger(tmp_path)
