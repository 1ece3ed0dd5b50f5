import pytest

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
    from pathlib import Path

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
