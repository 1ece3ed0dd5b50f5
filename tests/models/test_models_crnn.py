"""crnn.models.crnn: building the network, its configurable RNN and channels, and one forward pass."""

import pytest
import torch

from crnn.config import ModelConfig
from crnn.models import PRESETS, build_model


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
