import pytest
import torch

from crnn.config import ModelConfig
from crnn.models import PRESETS, RNN_DEFAULTS, build_model, count_parameters


@pytest.mark.parametrize("arch", list(PRESETS))
@pytest.mark.parametrize("width", [16, 37, 85, 128])
def test_output_lengths_match_forward(arch, width):
    m = build_model(ModelConfig(arch=arch, **RNN_DEFAULTS[arch]), num_classes=11).eval()
    with torch.no_grad():
        out = m(torch.zeros(2, 1, 32, width))
    assert out.shape == (2, m.output_length(width), 11)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, out.shape[1]), atol=1e-5)  # log-softmax


def test_parameter_counts_of_presets():
    counts = {a: count_parameters(build_model(ModelConfig(arch=a, **RNN_DEFAULTS[a]), 37)) for a in PRESETS}
    assert 8.4e6 < counts["paper"] < 9.0e6  # the paper's 8.7 M (with a 37-class head)
    assert 2.0e6 < counts["half"] < 2.4e6
    assert counts["mobile"] < counts["small"] < counts["half"]


@pytest.mark.parametrize("rnn", ["LSTM", "GRU", "RNN"])
def test_configurable_rnn_and_channels(rnn):
    cfg = ModelConfig(arch="small", rnn_type=rnn, rnn_layers=1, rnn_hidden=32, channels=[8, 8, 16, 16, 24])
    m = build_model(cfg, 5, in_channels=3, height=48)
    assert type(m.rnn).__name__ == rnn
    assert m(torch.zeros(1, 3, 48, 64)).shape[-1] == 5


def test_bad_model_config():
    with pytest.raises(ValueError, match="arch"):
        build_model(ModelConfig(arch="huge"), 5)
    with pytest.raises(ValueError, match="channels"):
        build_model(ModelConfig(channels=[1, 2]), 5)
    with pytest.raises(ValueError, match="rnn_type"):
        build_model(ModelConfig(rnn_type="TRANSFORMER"), 5)
