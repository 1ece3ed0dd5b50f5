"""Settings and command-line values that used to end in a traceback (or the OOM killer): one line each.

Every case goes through ``crnn.cli.main``; RELIABILITY.md tabulates them (issue 13).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import render_text
from crnn.cli import main
from crnn.config import Config
from crnn.data.images import Preprocess
from crnn.models import build_model
from crnn.training.checkpoint import save_checkpoint

CHARSET = "-7ABx"


def one_error_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    cfg = Config()
    cfg.model.rnn_hidden = 16
    cfg.data.charset = CHARSET
    model = build_model(cfg.model, len(CHARSET) + 1)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "charset": CHARSET, "preprocess": Preprocess().to_dict(),
                           "model": model.state_dict()})
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    for text in ("AB", "7x", "BA"):
        render_text(text).save(root / f"{text}.png")
    return root


# ------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("setting, key", [
    ("data.height=100000", "data.height"), ("train.batch_size=1000000", "train.batch_size"),
    ("model.rnn_hidden=3000000", "model.rnn_hidden"), ("model.rnn_layers=100", "model.rnn_layers"),
    ("model.channels=16,32,100000", "model.channels"), ("data.max_width=10000000", "data.max_width"),
    ("data.synth_epoch_size=1000000000", "data.synth_epoch_size"), ("data.max_pixels=100000000000", "data.max_pixels"),
    ("data.workers=100000", "data.workers"), ("data.max_val=100000000", "data.max_val"),
    ("train.lr=inf", "train.lr"), ("train.lr=nan", "train.lr"), ("train.weight_decay=-inf", "train.weight_decay"),
    ("train.checkpoint_every=inf", "train.checkpoint_every"), ("augment.noise_std=nan", "augment.noise_std"),
    ("train.grad_clip=inf", "train.grad_clip"),
])
def test_huge_or_non_finite_settings_stop_before_any_data_is_read(setting, key, tmp_path, capsys):
    # The data does not exist: the setting must be named first, in one line, and nothing written.
    code = main(["train", "--train", str(tmp_path / "no-such-data"), "--out", str(tmp_path / "run"),
                 "--set", setting, "--no-progress"])
    err = one_error_line(capsys.readouterr().err)
    assert code == 2 and err.startswith(f"error: {key} must be"), err
    assert not (tmp_path / "run").exists()


def test_lr_flag_inf_is_refused(tmp_path, capsys):
    assert main(["train", "--train", str(tmp_path / "x"), "--out", str(tmp_path / "run"), "--lr", "inf"]) == 2
    assert "train.lr must be a finite number" in one_error_line(capsys.readouterr().err)


def test_config_file_not_utf8_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(b"[train]\nlr = 0.001\nname = \"\xff\xfe\"\n")
    assert main(["train", "--train", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(cfg) in err and "line 3 is not valid UTF-8" in err


# ------------------------------------------------------------------------------------------- predict / eval


@pytest.mark.parametrize("command", ["predict", "eval"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_batch_size_below_one_is_one_line(command, value, model_file, images, capsys):
    assert main([command, str(model_file), str(images), "--batch-size", value]) == 2
    assert f"--batch-size must be at least 1, got {value}" in one_error_line(capsys.readouterr().err)


def test_empty_lexicon_is_one_line(model_file, images, tmp_path, capsys):
    empty = tmp_path / "words.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["predict", str(model_file), str(images), "--lexicon", str(empty)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(empty) in err and "no word" in err
    unusable = tmp_path / "other.txt"
    unusable.write_text("hello\nworld\n", encoding="utf-8")  # no word fits the charset -7ABx
    assert main(["eval", str(model_file), str(images), "--lexicon", str(unusable)]) == 2
    assert "all 2 words have characters the model cannot output" in one_error_line(capsys.readouterr().err)


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


@pytest.fixture(scope="module")
def onnx_file(model_file, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "m.onnx"
    assert main(["export", str(model_file), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_eval_runs_an_onnx_file_like_its_checkpoint(onnx_file, model_file, images, capsys):
    import json

    assert main(["eval", str(model_file), str(images), "--json"]) == 0
    torch_summary = json.loads(capsys.readouterr().out)
    assert main(["eval", str(onnx_file), str(images), "--json"]) == 0
    onnx_summary = json.loads(capsys.readouterr().out)
    assert onnx_summary["samples"] == torch_summary["samples"] == 3
    assert onnx_summary["word_accuracy"] == torch_summary["word_accuracy"]
    assert onnx_summary["cer"] == pytest.approx(torch_summary["cer"])
    assert [e["pred"] for e in onnx_summary["worst_errors"]] == [e["pred"] for e in torch_summary["worst_errors"]]


def test_visualize_and_eval_report_say_they_need_the_checkpoint(onnx_file, images, tmp_path, capsys):
    assert main(["visualize", str(onnx_file), str(images), "--out", str(tmp_path / "viz")]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "is an exported ONNX model, not a checkpoint" in err and "truncated" not in err
    renamed = tmp_path / "model.pt"  # the same file under a checkpoint's name
    renamed.write_bytes(onnx_file.read_bytes())
    assert main(["visualize", str(renamed), str(images), "--out", str(tmp_path / "viz")]) == 2
    assert "is an exported ONNX model" in one_error_line(capsys.readouterr().err)
    assert main(["eval", str(onnx_file), str(images), "--report", str(tmp_path / "rep")]) == 2
    assert "--report draws alignments with PyTorch" in one_error_line(capsys.readouterr().err)
