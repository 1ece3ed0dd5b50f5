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


@pytest.mark.parametrize("arch", list(PRESETS))
def test_a_preset_from_python_is_the_preset_with_its_own_rnn(arch):
    """``ModelConfig(arch="paper")`` is the paper's BiLSTM 256 x 2, as ``crnn train --arch paper`` is."""
    m = build_model(ModelConfig(arch=arch), num_classes=5)
    want = RNN_DEFAULTS[arch]
    assert type(m.rnn).__name__ == want["rnn_type"]
    assert (m.rnn.hidden_size, m.rnn.num_layers) == (want["rnn_hidden"], want["rnn_layers"])
    assert ModelConfig(arch=arch).resolved() == ModelConfig(arch=arch, **RNN_DEFAULTS[arch])
    assert ModelConfig(arch=arch, rnn_hidden=24).resolved().rnn_hidden == 24


@pytest.mark.parametrize("arch", list(PRESETS))
def test_one_forward_gives_log_probs_lengths_and_the_ctc_loss(arch):
    torch.manual_seed(0)
    m = build_model(ModelConfig(arch=arch), num_classes=6).eval()
    x, widths = torch.randn(3, 1, 32, 96), torch.tensor([96, 61, 40])
    targets, target_lengths = torch.tensor([1, 2, 3, 4, 5, 1, 2]), torch.tensor([3, 2, 2])
    with torch.no_grad():
        out = m(x, widths, targets, target_lengths)
        lp = m(x)
    assert torch.equal(out.log_probs, lp)
    assert out.lengths.tolist() == [m.output_length(int(w)) for w in widths]
    want = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, out.lengths, target_lengths, blank=0,
                                        reduction="none", zero_infinity=True)
    assert torch.allclose(out.loss, want)
    assert m(x, widths).loss is None


@pytest.mark.parametrize("arch", list(PRESETS))
def test_frame_centres_follow_the_width_geometry(arch):
    m = build_model(ModelConfig(arch=arch), num_classes=5)
    for width in (16, 97, 400):
        c = m.frame_centres(width)
        assert len(c) == m.output_length(width) and (c >= 0).all() and (c <= width).all()
