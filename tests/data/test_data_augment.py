"""The batch augmentation: seeded, shape-preserving, and the elastic bend local and bounded."""

import torch

from crnn.config import AugmentConfig
from crnn.data.augment import _elastic_field, augment_batch

PLAIN = dict(rotate=0.0, shear=0.0, scale=0.0, translate=0.0, blur_prob=0.0, noise_std=0.0, contrast=0.0)


def _stripes(b=3, h=32, w=96):
    """Vertical bars: any horizontal displacement shows up as changed pixels."""
    x = -torch.ones(b, 1, h, w)
    x[..., ::8] = 1.0
    x[..., 1::8] = 1.0
    return x


def test_with_every_distortion_off_the_batch_is_unchanged():
    x = _stripes()
    y = augment_batch(x, AugmentConfig(**PLAIN), torch.Generator().manual_seed(0))
    assert torch.allclose(x, y, atol=1e-5)


def test_elastic_bends_each_image_its_own_way_and_is_seeded():
    x = _stripes()
    cfg = AugmentConfig(**PLAIN, elastic=0.15)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    c = augment_batch(x, cfg, torch.Generator().manual_seed(2))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert (a - x).abs().mean() > 0.05  # it moved ink
    assert not torch.allclose(a[0], a[1])  # a different bend per image


def test_elastic_field_is_smooth_and_bounded_by_the_amount():
    h, w, amount = 32, 200, 0.1
    f = _elastic_field(4, h, w, amount, torch.Generator().manual_seed(0), "cpu")
    assert f.shape == (4, h, w, 2)
    px = torch.stack([f[..., 0] * w / 2, f[..., 1] * h / 2], -1)  # back to pixels
    # bicubic interpolation overshoots a little; nothing comes near twice the bound
    assert px.abs().max() <= 1.3 * amount * h
    assert px.abs().max() > 0.3 * amount * h
    # neighbouring pixels move almost alike: a bend, not noise
    assert (px[:, :, 1:] - px[:, :, :-1]).abs().max() < 0.25 * amount * h
    # and the bend is local: far-apart columns move independently
    assert (px[:, :, :40] - px[:, :, -40:]).abs().max() > 0.5
