"""crnn.synth.glyphs: CAPTCHA-like glyph lines, distortion and squash."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from test_synth_generate import clear_caches, png

from crnn.errors import ConfigError
from crnn.synth import (
    SynthConfig,
    sample_at,
)
from crnn.synth.fonts import bundled_font_dir, load_font


def test_glyph_distortion_is_deterministic_and_differs_from_rigid_lines(cfg):
    warped = dataclasses.replace(cfg, glyph_warp_prob=1.0)
    run1 = [sample_at(warped, 5, i) for i in range(8)]
    clear_caches()
    run2 = [sample_at(warped, 5, i) for i in range(8)]
    assert [(s.text, png(s.image)) for s in run1] == [(s.text, png(s.image)) for s in run2]
    rigid = [sample_at(cfg, 5, i) for i in range(8)]
    assert all(a.image.height == cfg.height for a in run1)
    assert [png(a.image) for a in run1] != [png(b.image) for b in rigid]
    # a config that never distorts draws nothing for it: rigid datasets keep their bytes
    assert [png(s.image) for s in rigid] == [png(s.image) for s in
                                              (sample_at(dataclasses.replace(cfg, glyph_rotation=5.0), 5, i)
                                               for i in range(8))]


def _ink_gaps(mask: Image.Image) -> list[int]:
    """Widths of the empty column runs between the first and last inked column."""
    cols = (np.asarray(mask) > 64).any(axis=0)
    idx = np.flatnonzero(cols)
    gaps, run = [], 0
    for c in cols[idx[0]:idx[-1] + 1]:
        if c:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
    return gaps


@pytest.mark.parametrize("squash", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(12))
def test_glyph_word_spaces_stay_wider_than_letter_gaps(seed, squash):
    from crnn.synth.glyphs import glyph_mask

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0, glyph_clutter=False, glyph_squash=squash)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 40)
    rng = np.random.default_rng(seed)
    mask = glyph_mask("cab dig", font, rng, c)
    gaps = sorted(_ink_gaps(mask), reverse=True)
    assert gaps, "the word space left no empty columns"
    # one gap (the space) stands clearly above every gap between letters of a word
    assert len(gaps) == 1 or gaps[0] >= gaps[1] + 5


@pytest.mark.parametrize("squash", [False, True])
def test_every_glyph_leaves_ink_after_distortion(squash):
    from crnn.synth.glyphs import _glyph

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 32)
    rng = np.random.default_rng(0)
    for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,:;!?'\"()-/&$%#@+*=_":
        assert np.asarray(_glyph(ch, font, rng, c, squash)).max() > 64, ch


def _ink_rows(im: Image.Image) -> tuple[int, int]:
    rows = np.flatnonzero((np.asarray(im) > 64).any(axis=1))
    return int(rows[0]), int(rows[-1])


def test_squashed_glyphs_keep_their_upright_box_and_place_on_the_line():
    """Squashed as the captcha package does: the rotated ink is fitted back into the upright ink box, so
    a glyph is never wider than upright, and it stays where it was on the line: a lower-case ``o`` keeps
    its x-height (it must not turn into an ``O``) and a comma stays low."""
    from crnn.synth.glyphs import _glyph

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0, glyph_rotation=30.0)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 40)
    flat = dataclasses.replace(c, glyph_rotation=0.0, glyph_warp=0.0)
    upright = {ch: _glyph(ch, font, np.random.default_rng(0), flat, True) for ch in "oO,"}
    tilted = _glyph("O", font, np.random.default_rng(3), c, False)
    for seed in range(10):
        glyphs = {ch: _glyph(ch, font, np.random.default_rng(seed), c, True) for ch in "oO,"}
        for ch, g in glyphs.items():
            assert g.size == upright[ch].size, ch  # same box as the undistorted glyph, whatever the angle
        o_top, o_bottom = _ink_rows(glyphs["o"])
        cap_top, cap_bottom = _ink_rows(glyphs["O"])
        assert o_top > cap_top + 5 and abs(o_bottom - cap_bottom) <= 6
        assert _ink_rows(glyphs[","])[0] > o_bottom - 8
    assert tilted.size[0] > upright["O"].size[0]  # without squash a rotated glyph takes more room


def test_glyph_squash_is_deterministic_and_only_drawn_for_when_asked(cfg):
    warped = dataclasses.replace(cfg, glyph_warp_prob=1.0)
    squashed = dataclasses.replace(warped, glyph_squash=1.0)
    a = [png(sample_at(squashed, 9, i).image) for i in range(6)]
    clear_caches()
    assert a == [png(sample_at(squashed, 9, i).image) for i in range(6)]
    assert a != [png(sample_at(warped, 9, i).image) for i in range(6)]
    with pytest.raises(ConfigError, match="glyph_squash"):
        dataclasses.replace(cfg, glyph_squash=1.5)
