"""crnn.models.presets: the presets' parameter counts and their own RNNs."""

import pytest

from crnn.config import ModelConfig
from crnn.models import PRESETS, RNN_DEFAULTS, build_model, count_parameters


def test_parameter_counts_of_presets():
    counts = {a: count_parameters(build_model(ModelConfig(arch=a, **RNN_DEFAULTS[a]), 37)) for a in PRESETS}
    assert 8.4e6 < counts["paper"] < 9.0e6  # the paper's 8.7 M (with a 37-class head)
    assert 2.0e6 < counts["half"] < 2.4e6
    assert counts["mobile"] < counts["small"] < counts["half"]


@pytest.mark.parametrize("arch", list(PRESETS))
def test_a_preset_from_python_is_the_preset_with_its_own_rnn(arch):
    """``ModelConfig(arch="paper")`` is the paper's BiLSTM 256 x 2, as ``crnn train --arch paper`` is."""
    m = build_model(ModelConfig(arch=arch), num_classes=5)
    want = RNN_DEFAULTS[arch]
    assert type(m.rnn).__name__ == want["rnn_type"]
    assert (m.rnn.hidden_size, m.rnn.num_layers) == (want["rnn_hidden"], want["rnn_layers"])
    assert ModelConfig(arch=arch).resolved() == ModelConfig(arch=arch, **RNN_DEFAULTS[arch])
    assert ModelConfig(arch=arch, rnn_hidden=24).resolved().rnn_hidden == 24
