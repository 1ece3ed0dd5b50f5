"""The batch augmentation: seeded, shape-preserving, the elastic bend local and bounded, stroke weight both ways."""

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


def _bar(dark_ink: bool, b: int = 64):
    """One horizontal bar of ink, dark on light or light on dark."""
    bg, ink = (1.0, -1.0) if dark_ink else (-1.0, 1.0)
    x = torch.full((b, 1, 24, 64), bg)
    x[:, :, 10:14, 8:56] = ink
    return x


def _ink_mass(x: torch.Tensor, dark_ink: bool) -> torch.Tensor:
    """How much ink each image holds, 0 for background, 1 for a full ink pixel."""
    return ((1 - x) / 2 if dark_ink else (x + 1) / 2).sum(dim=(1, 2, 3))


def test_stroke_weight_thickens_and_thins_the_ink_whichever_its_polarity():
    for dark in (True, False):
        x = _bar(dark)
        y = augment_batch(x, AugmentConfig(**PLAIN, stroke=1.0), torch.Generator().manual_seed(3))
        before, after = _ink_mass(x, dark), _ink_mass(y, dark)
        # a full dilation of a 4x48 bar adds 2x52 + 2x4 = 112 pixels, an erosion removes 2x48 + 2x2 = 100
        assert (after > before + 5).any() and (after < before - 5).any()
        assert (after <= before + 112 + 1e-3).all() and (after >= before - 100 - 1e-3).all()
        # the background far from the bar is never touched
        assert torch.equal(y[:, :, :8], x[:, :, :8])


def test_stroke_weight_is_bounded_by_its_amount_and_seeded():
    x = _bar(True)
    cfg = AugmentConfig(**PLAIN, stroke=0.25)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(4))
    assert torch.equal(a, augment_batch(x, cfg, torch.Generator().manual_seed(4)))
    change = (_ink_mass(a, True) - _ink_mass(x, True)).abs()
    assert change.max() <= 0.25 * 112 + 1e-3 and change.max() > 1
