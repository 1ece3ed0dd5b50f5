"""Device selection and mixed precision, exercised on the CPU (the CUDA branches are chosen by the same code)."""

import pytest
import torch

from crnn.config import Config, apply_overrides
from crnn.devices import amp_dtype, resolve_device
from crnn.errors import CrnnError
from crnn.training.loop import train


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(CrnnError, match="CUDA is not available"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_amp_dtype(monkeypatch):
    assert amp_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert amp_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert amp_dtype(torch.device("cuda")) == torch.bfloat16


def test_amp_training_runs_on_cpu(toy_data, tmp_path):
    cfg = apply_overrides(Config(), ["data.height=32", "model.rnn_hidden=32", "train.batch_size=16", "train.epochs=2",
                                     "train.amp=true",
                                     "train.device=cpu"])
    res = train(cfg, toy_data / "train", tmp_path / "amp", progress=False, log=lambda *a: None)
    assert res.steps > 0 and res.best_path.exists()
    # the saved weights are fp32 whatever the autocast dtype
    from crnn.checkpoint import load_checkpoint

    assert all(v.dtype in (torch.float32, torch.int64) for v in load_checkpoint(res.best_path)["model"].values())
