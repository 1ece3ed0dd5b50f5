"""Growing a trained CRNN into wider conv stages: it starts out computing what the narrower one did."""

import pytest
import torch

from crnn.models.crnn import CRNN
from crnn.models.presets import preset_blocks
from crnn.models.widen import widen_state_dict


def _pair(arch: str, wide: list[int], height: int = 32, classes: int = 12):
    torch.manual_seed(0)
    small = CRNN(preset_blocks(arch), classes, height=height, rnn_hidden=32)
    big = CRNN(preset_blocks(arch, wide), classes, height=height, rnn_hidden=32)
    # trained-looking BatchNorm statistics and biases, so copying them is tested, not only their defaults
    for m in small.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return small, big


@pytest.mark.parametrize("arch,wide,height", [("small", [24, 48, 96, 96, 192], 32),
                                              ("small", [32, 64, 128, 128, 256], 48),
                                              ("half", [40, 64, 160, 128, 256, 300, 256], 32)])
def test_the_grown_model_computes_the_same_function(arch, wide, height):
    small, big = _pair(arch, wide, height)
    big.load_state_dict(widen_state_dict(small.state_dict(), small.blocks, big, noise=0.0))
    x = torch.rand(4, 1, height, 80)
    small.eval(), big.eval()
    assert torch.allclose(small(x), big(x), atol=1e-4)
    small.train(), big.train()  # batch statistics: every copy of a channel normalises alike
    torch.manual_seed(1)
    a = small(x)
    torch.manual_seed(1)
    assert torch.allclose(a, big(x), atol=1e-4)


def test_noise_moves_the_copies_apart_but_barely_changes_the_output():
    small, big = _pair("small", [32, 64, 128, 128, 256])
    grown = widen_state_dict(small.state_dict(), small.blocks, big, noise=0.02, seed=3)
    big.load_state_dict(grown)
    w = grown["cnn.1.0.weight"]  # (64, 32, 3, 3), grown from (32, 16, 3, 3)
    # the original filters keep their place; stage 1 copied each of its 16 channels once, so each input
    # channel's weight is split in two between the channel and its copy
    assert torch.allclose(w[:32, :16], small.state_dict()["cnn.1.0.weight"] / 2)
    copies, originals = w[32:], w[:32]
    assert not any(torch.equal(c, o) for c in copies for o in originals)  # noise: no copy is exact
    small.eval(), big.eval()
    x = torch.rand(4, 1, 32, 80)
    assert (small(x).exp() - big(x).exp()).abs().max() < 0.05
    # the same seed grows the same model
    assert all(torch.equal(v, widen_state_dict(small.state_dict(), small.blocks, big, noise=0.02, seed=3)[k])
               for k, v in grown.items())


def test_only_wider_stages_of_the_same_stack():
    small = CRNN(preset_blocks("small"), 12, height=32)
    narrower = CRNN(preset_blocks("small", [8, 32, 64, 64, 128]), 12, height=32)
    with pytest.raises(ValueError, match="stage 1 would shrink from 16 to 8 channels"):
        widen_state_dict(small.state_dict(), small.blocks, narrower)
    shallower = CRNN(preset_blocks("small")[:4], 12, height=16)
    with pytest.raises(ValueError, match="cannot widen a 5-stage CNN into a 4-stage one"):
        widen_state_dict(small.state_dict(), small.blocks, shallower)
    # the output layer is passed on as it is: a fine-tune onto another charset rebuilds it as for any init model
    other_charset = CRNN(preset_blocks("small", [32, 64, 128, 128, 256]), 20, height=32)
    grown = widen_state_dict(small.state_dict(), small.blocks, other_charset)
    assert torch.equal(grown["fc.weight"], small.state_dict()["fc.weight"])


@pytest.mark.parametrize("arch,rnn_type,layers", [("small", "GRU", 2), ("half", "LSTM", 2), ("small", "GRU", 1)])
def test_a_grown_rnn_computes_the_same_function(arch, rnn_type, layers):
    """More hidden units (and wider conv stages at once): every hidden state is the old one's, copied."""
    torch.manual_seed(0)
    small = CRNN(preset_blocks(arch), 12, height=32, rnn_type=rnn_type, rnn_layers=layers, rnn_hidden=24).eval()
    wide = [2 * b.out for b in small.blocks]
    for hidden, channels in ((40, None), (48, wide)):
        big = CRNN(preset_blocks(arch, channels), 12, height=32, rnn_type=rnn_type, rnn_layers=layers,
                   rnn_hidden=hidden).eval()
        grown = widen_state_dict(small.state_dict(), small.blocks, big, noise=0.0)
        big.load_state_dict(grown)
        x = torch.rand(3, 1, 32, 72)
        assert torch.allclose(small(x), big(x), atol=1e-4)
    assert grown["fc.weight"].shape == (12, 96) and grown["rnn.weight_hh_l0"].shape[1] == 48


def test_noise_on_the_copied_units_and_no_shrinking():
    torch.manual_seed(0)
    small = CRNN(preset_blocks("small"), 12, height=32, rnn_hidden=24).eval()
    big = CRNN(preset_blocks("small"), 12, height=32, rnn_hidden=36).eval()
    grown = widen_state_dict(small.state_dict(), small.blocks, big, noise=0.02, seed=1)
    w = grown["rnn.weight_ih_l0"]  # (3 x 36, features): gate blocks r, z, n
    old = small.state_dict()["rnn.weight_ih_l0"]
    assert torch.equal(w[:24], old[:24]) and torch.equal(w[36:60], old[24:48])  # the originals keep their rows
    assert not any(torch.equal(w[i], old[j]) for i in range(24, 36) for j in range(24))  # no copy is exact
    big.load_state_dict(grown)
    x = torch.rand(2, 1, 32, 64)
    assert (small(x).exp() - big(x).exp()).abs().max() < 0.05
    with pytest.raises(ValueError, match="the RNN would shrink from 36 to 24 hidden units"):
        widen_state_dict(big.state_dict(), big.blocks, small)
