"""train.output_bias=prior: the output layer starts at the classes' shares of the time steps."""

import math

import pytest
import torch

from crnn.charset import BLANK
from crnn.config import Config, apply_overrides, validate
from crnn.errors import ConfigError
from crnn.training.output_prior import log_prior


def test_prior_counts_characters_per_time_step_and_gives_the_rest_to_the_blank():
    # two labels over classes 1..3 (0 is the blank), 10 + 10 time steps: 5 characters in 20 steps
    p = log_prior([[1, 1, 2], [1, 2]], [40, 40], lambda w: w // 4, num_classes=5).exp()
    assert torch.isclose(p.sum(), torch.tensor(1.0))
    # counts: blank 15, '1' 3, '2' 2, '3' and '4' never seen: a hundredth of the rarest (2) each
    total = 15 + 3 + 2 + 0.02 + 0.02
    assert math.isclose(float(p[BLANK]), 15 / total, rel_tol=1e-5)
    assert math.isclose(float(p[1]), 3 / total, rel_tol=1e-5) and math.isclose(float(p[2]), 2 / total, rel_tol=1e-5)
    assert float(p[3]) == float(p[4]) and 0 < float(p[3]) < float(p[2]) / 50


def test_blank_keeps_a_floor_when_labels_fill_the_steps():
    p = log_prior([[1, 2, 3, 4]], [16], lambda w: w // 4, num_classes=5).exp()
    assert float(p[BLANK]) > 0.0


def test_setting_is_checked():
    assert validate(apply_overrides(Config(), ["train.output_bias=prior"])).train.output_bias == "prior"
    with pytest.raises(ConfigError, match="train.output_bias"):
        validate(apply_overrides(Config(), ["train.output_bias=ones"]))
