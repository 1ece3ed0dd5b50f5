"""crnn.synth.render: output height and mode, contrast and tight crops."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image
from test_synth_generate import png

from crnn.synth import (
    SynthConfig,
    sample_at,
)
from crnn.synth.render import luminance, pick_colours


def _ink_box(img: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right gap, bottom gap) of the pixels far from the flat background's colour."""
    a = np.asarray(img.convert("L"), dtype=np.int16)
    bg = np.bincount(a.ravel()).argmax()
    ys, xs = np.nonzero(np.abs(a - bg) > 60)
    return xs.min(), ys.min(), a.shape[1] - 1 - xs.max(), a.shape[0] - 1 - ys.max()


def _clean(c: SynthConfig) -> SynthConfig:
    return dataclasses.replace(c, background_mix=(1.0, 0.0, 0.0), blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0,
                               rotation=0.0, shear=0.0, pad_x=(0.0, 0.0), pad_y=(0.0, 0.0))


def test_tight_crops_fill_the_height_where_rigid_lines_leave_room(tmp_path):
    lines = tmp_path / "x.txt"
    lines.write_text("ace\nmum\nvow\n", encoding="utf-8")  # no ascenders, no descenders
    base = _clean(SynthConfig(system_fonts=False, text=f"lines:{lines}"))
    tight = dataclasses.replace(base, tight_prob=1.0, tight_margin=(0.0, 0.0))
    rigid_gaps, tight_gaps = [], []
    for i in range(12):
        t = _ink_box(sample_at(tight, 4, i).image)
        assert max(t) <= 2, t  # the ink reaches every side (up to its anti-aliased rim)
        tight_gaps.append(t[1] + t[3])
        r = _ink_box(sample_at(base, 4, i).image)
        rigid_gaps.append(r[1] + r[3])
    # a rigid line keeps (part of) the room for ascenders and descenders, so x-height text sits smaller
    assert np.mean(rigid_gaps) > np.mean(tight_gaps) + 3


def test_tight_margin_bounds_the_room_around_the_ink(tmp_path):
    lines = tmp_path / "x.txt"
    lines.write_text("Kilo\n", encoding="utf-8")
    c = dataclasses.replace(_clean(SynthConfig(system_fonts=False, text=f"lines:{lines}", stretch=0.0)),
                            tight_prob=1.0, tight_margin=(0.1, 0.15))
    for i in range(10):
        img = sample_at(c, 1, i).image
        left, top, right, bottom = _ink_box(img)
        # margins are 0.1-0.15 font sizes per side around caps about 0.73 font sizes high, so each is
        # 10-16 % of the output height, give or take the anti-aliased rim
        for m in (left, top, right, bottom):
            assert 0.05 * img.height <= m <= 0.2 * img.height, (left, top, right, bottom, img.size)


def test_configs_without_tight_crops_keep_their_bytes(cfg):
    a = [png(sample_at(cfg, 6, i).image) for i in range(8)]
    b = [png(sample_at(dataclasses.replace(cfg, tight_margin=(0.2, 0.3)), 6, i).image) for i in range(8)]
    assert a == b
    c = [png(sample_at(dataclasses.replace(cfg, tight_prob=0.5), 6, i).image) for i in range(8)]
    assert a != c


def test_output_height_and_mode(cfg):
    import dataclasses

    for height, channels, mode in ((32, 1, "L"), (48, 3, "RGB"), (20, 1, "L")):
        c = dataclasses.replace(cfg, height=height, channels=channels)
        for i in range(8):
            img = sample_at(c, 1, i).image
            assert img.height == height and img.mode == mode and img.width >= 1


def test_text_contrasts_with_background():
    c = SynthConfig(system_fonts=False, channels=3, min_contrast=90.0)
    rng = np.random.default_rng(0)
    for _ in range(400):
        amp = float(rng.uniform(0, 30))
        fg, bgs = pick_colours(rng, c, amp, 2)
        for bg in bgs:
            assert abs(luminance(fg) - luminance(bg)) >= 90.0 + amp - 1e-6
