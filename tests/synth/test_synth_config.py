"""crnn.synth.config: loading and validating synth configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from crnn.errors import ConfigError
from crnn.synth import (
    SynthConfig,
    load_synth_config,
    sample_at,
)

REPO = Path(__file__).resolve().parents[2]


def test_bad_font_balance_and_tight_settings_are_rejected():
    with pytest.raises(ConfigError, match="font_balance"):
        SynthConfig(font_balance="weight")
    with pytest.raises(ConfigError, match="tight_prob"):
        SynthConfig(tight_prob=1.5)
    with pytest.raises(ConfigError, match="tight_margin"):
        SynthConfig(tight_margin=(0.3, 0.1))


def test_load_synth_config(tmp_path, words_file):
    (tmp_path / "w.txt").write_text("alpha\nbeta\n", encoding="utf-8")
    p = tmp_path / "c.toml"
    p.write_text(
        '[synth]\nheight = 40\ntext = "words:w.txt"\ncase_mix = [1, 0, 0]\npad_x = [0.1, 0.2]\n'
        "punct_prob = 0\npattern_prob = 0\nsystem_fonts = false\n"
    )
    c = load_synth_config(p)
    assert c.height == 40 and c.text == f"words:{tmp_path / 'w.txt'}" and c.pad_x == (0.1, 0.2)
    hash(c)  # frozen and hashable
    assert SynthConfig(**c.to_dict()) == c
    for i in range(5):
        s = sample_at(c, 0, i)
        assert set(s.text.split(" ")) <= {"alpha", "beta"} and s.image.height == 40
    p.write_text("heigth = 40\n")
    with pytest.raises(ConfigError, match="did you mean 'height'"):
        load_synth_config(p)
    p.write_text("rotation = -1\n")
    with pytest.raises(ConfigError, match="rotation"):
        load_synth_config(p)


def test_example_config_loads():
    c = load_synth_config(REPO / "configs" / "synth_en.toml")
    assert c.height == 32 and c.holdout_fonts == ("DejaVuSerif*",)
