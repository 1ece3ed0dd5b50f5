"""Writes builtin_golden.json: what each shipped model reads on a fixed set of rendered images.

Run once with the code before a change that must not alter predictions (the #14 redesign: the file was made
with main at bebf958); ``tests/inference/test_inference_zoo.py`` then checks that every runtime still reads exactly
these texts.

    .venv/bin/python tests/data/make_builtin_golden.py
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def golden_images():
    """30 clean words (the accuracy test's) and 30 rendered phrases with the default synth noise."""
    from crnn.synth import SynthConfig, bundled_fonts, render, sample
    from crnn.synth.generate import sample_rng

    sys.path.insert(0, str(HERE.parent / "inference"))
    from test_inference_zoo import WORDS

    fonts = [f for f in bundled_fonts() if f.name in ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")]
    clean = dataclasses.replace(SynthConfig(system_fonts=False), blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0,
                                rotation=0.0, shear=0.0)
    rng = np.random.default_rng(0)
    images = [render(w, fonts[i % len(fonts)], rng, clean) for i, w in enumerate(WORDS)]
    noisy = SynthConfig(system_fonts=False, height=48)
    images += [sample(sample_rng(7, i), noisy)[0] for i in range(30)]
    return images


def main() -> None:
    from crnn import Recognizer

    images = golden_images()
    out = {}
    for name in ("en", "en-mobile"):
        preds = Recognizer.load(f"builtin:{name}").predict(images)
        out[name] = [p.text for p in preds]
    (HERE / "builtin_golden.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'builtin_golden.json'}: {len(images)} images per model")


if __name__ == "__main__":
    main()
