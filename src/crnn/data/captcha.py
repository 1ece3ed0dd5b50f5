"""CAPTCHA images named by their text: the built-in default dataset for the demo and the benchmarks.

Like the original project's 2,000-image set: 160x60 images of 4-6 digits and
capital letters from the ``captcha`` package. That package draws its noise from
``secrets``, so images are not reproducible from a seed; the *texts* are.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

ALPHABET = string.digits + string.ascii_uppercase


def generate_captchas(out: str | Path, count: int, seed: int = 0, min_len: int = 4, max_len: int = 6,
                      width: int = 160, height: int = 60, exclude: set[str] | None = None) -> list[str]:
    """Write ``count`` images ``TEXT.png`` with distinct texts into ``out``; returns the texts.

    ``exclude`` keeps texts out (e.g. a training set's, when making a held-out set).
    """
    from captcha.image import ImageCaptcha

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    gen = ImageCaptcha(width=width, height=height)
    taken = set(exclude or ())
    texts: list[str] = []
    while len(texts) < count:
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(min_len, max_len)))
        if text in taken:
            continue
        taken.add(text)
        gen.generate_image(text).save(out / f"{text}.png")
        texts.append(text)
    return texts
