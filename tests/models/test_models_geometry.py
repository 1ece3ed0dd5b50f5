"""crnn.models.geometry: output lengths and frame centres of every architecture."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from crnn.config import ModelConfig
from crnn.models import PRESETS, RNN_DEFAULTS, build_model


def _linearised(cnn: torch.nn.Module) -> torch.nn.Module:
    """The conv stack with max-pools as average pools and ReLUs removed: its gradient support is exactly
    the receptive field."""
    m = copy.deepcopy(cnn).float().eval()
    for stage in m:
        for i, layer in enumerate(stage):
            if isinstance(layer, torch.nn.MaxPool2d):
                stage[i] = torch.nn.AvgPool2d(layer.kernel_size, layer.stride)
            elif isinstance(layer, torch.nn.ReLU):
                stage[i] = torch.nn.Identity()
            elif isinstance(layer, torch.nn.Conv2d):
                torch.nn.init.constant_(layer.weight, 0.1)
    return m


@pytest.mark.parametrize("arch", list(PRESETS))
def test_frame_centres_are_receptive_field_centres(arch):
    width = 96
    model = build_model(ModelConfig(arch=arch), num_classes=5)
    cnn = _linearised(model.cnn)
    x = torch.ones(1, 1, 32, width, requires_grad=True)
    f = cnn(x)
    steps = f.shape[-1]
    assert steps == model.output_length(width)
    centres = model.frame_centres(width, steps)
    assert centres.shape == (steps,) and np.all(np.diff(centres) > 0)
    for t in (steps // 3, steps // 2):  # interior steps: the field is not cut by the image border
        (g,) = torch.autograd.grad(f[0, :, :, t].sum(), x, retain_graph=True)
        cols = torch.nonzero(g[0, 0].abs().sum(0) > 0).flatten()
        assert centres[t] == pytest.approx((float(cols.min()) + float(cols.max()) + 1) / 2)
    if all(b.kernel == 3 for b in model.blocks):  # plain 4x width pooling: t -> (t + 0.5) * W / T
        assert np.allclose(centres, (np.arange(steps) + 0.5) * width / steps)


@pytest.mark.parametrize("arch", list(PRESETS))
@pytest.mark.parametrize("width", [16, 37, 85, 128])
def test_output_lengths_match_forward(arch, width):
    m = build_model(ModelConfig(arch=arch, **RNN_DEFAULTS[arch]), num_classes=11).eval()
    with torch.no_grad():
        out = m(torch.zeros(2, 1, 32, width))
    assert out.shape == (2, m.output_length(width), 11)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, out.shape[1]), atol=1e-5)  # log-softmax


@pytest.mark.parametrize("arch", list(PRESETS))
def test_frame_centres_follow_the_width_geometry(arch):
    m = build_model(ModelConfig(arch=arch), num_classes=5)
    for width in (16, 97, 400):
        c = m.frame_centres(width)
        assert len(c) == m.output_length(width) and (c >= 0).all() and (c <= width).all()
