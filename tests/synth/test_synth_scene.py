"""crnn.synth.scene: the capture looks (scene, curve, perspective, low resolution, binarisation)."""

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

SCENE_OPTIONS = {"scene_prob": 1.0, "curve_prob": 1.0, "perspective_prob": 1.0, "lowres_prob": 1.0,
                 "binarize_prob": 1.0}


def test_configs_without_capture_looks_keep_their_bytes(cfg):
    """Every capture look is drawn only when its probability is above 0, so older datasets keep their bytes."""
    a = [png(sample_at(cfg, 6, i).image) for i in range(8)]
    b = [png(sample_at(dataclasses.replace(cfg, scene_min_contrast=60.0, outline_prob=1.0, shadow_prob=1.0,
                                           curve=0.9, perspective=0.9, lowres_height=(5, 6), speckle=0.3),
                       6, i).image) for i in range(8)]
    assert a == b


@pytest.mark.parametrize("option", sorted(SCENE_OPTIONS))
def test_each_capture_look_is_deterministic_changes_the_image_and_keeps_the_height(cfg, option):
    c = dataclasses.replace(cfg, **{option: 1.0})
    a = [sample_at(c, 3, i).image for i in range(6)]
    clear_caches()
    assert [png(x) for x in a] == [png(sample_at(c, 3, i).image) for i in range(6)]
    assert [png(x) for x in a] != [png(sample_at(cfg, 3, i).image) for i in range(6)]
    assert all(x.height == cfg.height and x.mode == "L" for x in a)


def test_binarised_lines_are_black_and_white_up_to_speckle(cfg):
    c = dataclasses.replace(cfg, binarize_prob=1.0, speckle=0.0, jpeg_prob=0.0)
    for i in range(6):
        a = np.asarray(sample_at(c, 2, i).image)
        assert set(np.unique(a).tolist()) <= {0, 255}


def test_scene_ink_keeps_its_least_contrast_against_the_background(tmp_path):
    """The ink's luma differs from the background's mean by at least scene_min_contrast: low, never zero."""
    from crnn.synth import scene

    c = SynthConfig(system_fonts=False, scene_min_contrast=40.0, shadow_prob=0.0, outline_prob=0.0)
    mask = Image.new("L", (120, 32), 0)
    mask.paste(255, (20, 8, 100, 24))
    for seed in range(20):
        rng = np.random.default_rng(seed)
        img = np.asarray(scene.compose_scene(mask, rng, c).convert("L"), dtype=np.float64)
        ink = img[10:22, 25:95].mean()
        assert img.shape == (32, 120)
        assert ink >= 0 and abs(ink - np.median(img[:, :15])) > 10  # the text is visible against its surround


def test_curve_and_perspective_keep_every_bit_of_ink():
    from crnn.synth import scene

    mask = Image.new("L", (200, 40), 0)
    mask.paste(255, (10, 10, 190, 30))
    total = np.asarray(mask, dtype=np.int64).sum()
    for seed in range(10):
        bent = np.asarray(scene.curve(mask, np.random.default_rng(seed), 0.3), dtype=np.int64)
        assert bent.sum() == total and bent.shape[0] > 40  # columns move by whole pixels: nothing is cut off
        seen = np.asarray(scene.perspective(mask, np.random.default_rng(seed), 0.3), dtype=np.int64)
        assert seen.sum() > 0.3 * total  # the ink is there, and the canvas grew to hold all of it:
        assert max(seen[0].max(), seen[-1].max(), seen[:, 0].max(), seen[:, -1].max()) < 128  # no edge cut


def test_bad_capture_settings_are_rejected(cfg):
    for key, value in (("scene_prob", 1.5), ("curve", -1.0), ("scene_min_contrast", 500.0),
                       ("lowres_height", (30, 10)), ("speckle", 2.0)):
        with pytest.raises(ConfigError, match=key):
            dataclasses.replace(cfg, **{key: value})
