"""Device selection and mixed precision, exercised on the CPU (the CUDA branches are chosen by the same code)."""

from __future__ import annotations

import pytest
import torch

from conftest import one_error_line
from crnn import devices
from crnn.cli import EXIT_LEARNED_NOTHING, EXIT_OK, main
from crnn.config import Config, apply_overrides
from crnn.devices import amp_dtype, resolve_device, use_amp
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


def test_amp_auto_follows_the_hardware(monkeypatch):
    """auto: bf16 where the device multiplies it fast (AMX, a bf16 GPU), fp32 elsewhere; true/false force it."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert use_amp("auto", cpu) == (True, "bfloat16 mixed precision (train.amp=auto: this CPU has AMX)")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert use_amp("auto", cpu) == (False, "fp32 (train.amp=auto: no fast bf16 on this device)")
    assert use_amp(True, cpu)[0] and not use_amp(False, cpu)[0]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert not devices.fast_bf16(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert use_amp("auto", torch.device("cuda")) == (True, "bfloat16 mixed precision (train.amp=auto: cuda with bf16)")


def test_a_run_says_which_precision_it_chose(toy_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    common = ["train", "--train", str(toy_data / "train"), "--epochs", "1", "--no-progress",
              "--set", "data.height=32", "--set", "model.rnn_hidden=32"]
    finished = (EXIT_OK, EXIT_LEARNED_NOTHING)  # one epoch: what it learned is not the point here
    assert main(common + ["--out", str(tmp_path / "a")]) in finished
    assert "device cpu, fp32 (train.amp=auto: no fast bf16 on this device)" in capsys.readouterr().out
    assert main(common + ["--out", str(tmp_path / "b"), "--amp"]) in finished
    assert "device cpu, bfloat16 mixed precision (train.amp=true)" in capsys.readouterr().out
    assert "params, bf16" in (tmp_path / "b" / "train.log").read_text()  # the run's record says so too
    assert "params, fp32" in (tmp_path / "a" / "train.log").read_text()
    assert main(common + ["--out", str(tmp_path / "c"), "--set", "train.amp=sometimes"]) == 2
    assert "train.amp must be auto, true or false, got 'sometimes'" in one_error_line(capsys.readouterr().err)


def test_amp_training_runs_on_cpu(toy_data, tmp_path):
    cfg = apply_overrides(Config(), ["data.height=32", "model.rnn_hidden=32", "train.batch_size=16", "train.epochs=2",
                                     "train.amp=true",
                                     "train.device=cpu"])
    res = train(cfg, toy_data / "train", tmp_path / "amp", progress=False, log=lambda *a: None)
    assert res.steps > 0 and res.best_path.exists()
    # the saved weights are fp32 whatever the autocast dtype
    from crnn.checkpoint import load_checkpoint

    assert all(v.dtype in (torch.float32, torch.int64) for v in load_checkpoint(res.best_path)["model"].values())


@pytest.mark.parametrize("command", ["predict", "eval", "visualize"])
@pytest.mark.parametrize("device, says", [("banana", "is not a device name"), ("cuda:99", "CUDA")])
def test_unusable_device_is_one_line(command, device, says, model_file, images, tmp_path, capsys):
    extra = ["--out", str(tmp_path / "viz")] if command == "visualize" else []
    assert main([command, str(model_file), str(images), "--device", device, *extra]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert says in err and repr(device) in err


def test_cuda_on_a_machine_without_it_is_one_line(model_file, images, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["predict", str(model_file), str(images), "--device", "cuda"]) == 2
    assert "CUDA is not available on this machine" in one_error_line(capsys.readouterr().err)
