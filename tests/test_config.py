"""crnn.config: files, overrides and validation, including values that must stop a run in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import one_error_line
from crnn.cli import main
from crnn.config import Config, apply_overrides, load_config, parse_duration, to_toml, validate
from crnn.errors import ConfigError


def test_toml_and_yaml_files(tmp_path):
    (tmp_path / "c.toml").write_text('[model]\nrnn_type = "LSTM"\nrnn_hidden = 64\n[train]\nlr = 0.01\n')
    (tmp_path / "c.yaml").write_text("model:\n  rnn_type: RNN\n  channels: [8, 8, 16, 16, 32]\n")
    t = load_config(tmp_path / "c.toml")
    y = load_config(tmp_path / "c.yaml")
    assert (t.model.rnn_type, t.model.rnn_hidden, t.train.lr) == ("LSTM", 64, 0.01)
    assert y.model.rnn_type == "RNN" and y.model.channels == [8, 8, 16, 16, 32]
    assert t.data.height == Config().data.height  # untouched keys keep defaults


def test_overrides_are_typed():
    cfg = apply_overrides(Config(), ["train.epochs=3", "augment.enabled=false", "data.charset=AB-",
                                     "train.time_budget=2m", "model.channels=4,4,8,8,16", "data.label_pattern=none"])
    assert cfg.train.epochs == 3 and cfg.augment.enabled is False and cfg.data.charset == "AB-"
    assert cfg.train.time_budget == 120.0 and cfg.model.channels == [4, 4, 8, 8, 16]
    assert cfg.data.label_pattern is None


@pytest.mark.parametrize("bad", ["train.nope=1", "nosection.x=1", "train.epochs=many", "augment.enabled=maybe",
                                 "train.epochs"])
def test_bad_overrides_name_the_key(bad):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Config(), [bad])
    assert bad.split("=")[0].split(".")[-1] in str(e.value) or "expected" in str(e.value)


def test_unknown_key_in_file(tmp_path):
    (tmp_path / "c.toml").write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(tmp_path / "c.toml")


def test_broken_file_is_one_clear_error(tmp_path):
    (tmp_path / "c.toml").write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "c.toml")


def test_round_trip_through_toml(tmp_path):
    cfg = apply_overrides(Config(), ["data.charset=a\"b\\c", "train.time_budget=90", "model.rnn_type=LSTM"])
    (tmp_path / "c.toml").write_text(to_toml(cfg))
    assert load_config(tmp_path / "c.toml") == cfg


def test_durations():
    assert parse_duration("10m") == 600 and parse_duration("1h30m") == 5400 and parse_duration("45s") == 45
    with pytest.raises(ConfigError):
        parse_duration("ten minutes")


def test_defaults_and_shipped_training_configs_are_valid():

    assert validate(Config()) is not None
    configs = [p for p in sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml"))
               if "[synth]" not in p.read_text()]
    assert len(configs) >= 5
    for path in configs:
        validate(load_config(path))


@pytest.mark.parametrize("override, key", [
    ("train.lr=-1", "train.lr"), ("train.lr=nan", "train.lr"), ("train.batch_size=0", "train.batch_size"),
    ("data.channels=2", "data.channels"), ("data.val_fraction=1.5", "data.val_fraction"),
    ("train.ema=1", "train.ema"), ("train.schedule=linear", "train.schedule"), ("model.arch=huge", "model.arch"),
    ("model.rnn_type=transformer", "model.rnn_type"), ("augment.blur_prob=2", "augment.blur_prob"),
    ("data.max_width=8", "data.max_width"), ("model.dropout=1", "model.dropout"), ("data.height=4", "data.height"),
    ("data.init_charset=all", "data.init_charset"), ("data.rehearsal=-1", "data.rehearsal"),
])
def test_out_of_range_values_name_the_key(override, key):
    cfg = apply_overrides(Config(), [override])  # the type is fine...
    with pytest.raises(ConfigError, match=rf"^{key} must be"):  # ...the value is not
        validate(cfg)


def test_training_checks_the_config_before_loading_data(tmp_path):
    from crnn.training.loop import train

    cfg = apply_overrides(Config(), ["train.lr=-1"])
    with pytest.raises(ConfigError, match="train.lr"):
        train(cfg, tmp_path / "no-such-data", tmp_path / "run")  # the config is named, not the missing data
    assert not (tmp_path / "run").exists()


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
