import pytest

from crnn.config import Config, apply_overrides, load_config, parse_duration, to_toml
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
