"""CAPTCHA-like line masks: glyphs drawn one by one, each rotated and warped, crowded, crossed by clutter.

Printed-text rendering (:mod:`crnn.synth.render`) moves a whole line rigidly; real
distorted text (CAPTCHAs, stamps, hand-set signs) moves every character on its own.
A model pre-trained only on rigid lines transfers poorly to such text, so a
fraction of synthetic samples (``glyph_warp_prob``) is drawn this way: the same
scheme as the ``captcha`` package (per-character rotation, a random quadrilateral
warp, overlapping advance, noise dots and an arc in the ink colour), but with any
font and text, and with randomness from the sample's own generator so that it is
reproducible. Word spaces stay wider than any gap between letters, so the label
keeps its meaning.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from crnn.synth.config import SynthConfig

_BOLD = [min(255, int(v * 1.97)) for v in range(256)]


def _glyph(ch: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator, cfg: SynthConfig,
           squash: bool = False) -> Image.Image:
    """One character's ink, rotated and pulled into a random quadrilateral (as the captcha package does).

    With ``squash`` the rotated, warped ink is fitted back into the character's upright ink box, as the
    captcha package fits it back into the character's text box: rotation then bends and narrows a letter
    instead of tilting it. The box stays where the ink was on the line, so a lower-case ``o`` keeps its
    x-height and is not stretched into an ``O`` (the package draws capitals only and need not care), and
    its ink is made bold as the package's is."""
    # the box keeps the line's full ascent and descent so that a comma stays low and an apostrophe high
    ascent, descent = font.getmetrics()
    left, _, right, _ = font.getbbox(ch, anchor="ls")
    m = 2
    im = Image.new("L", (int(right - left) + 2 * m, ascent + descent + 2 * m), 0)
    ImageDraw.Draw(im).text((m - left, m + ascent), ch, fill=255, font=font, anchor="ls")
    box = im.getbbox()
    line_h, top = im.size[1], 0
    if box is not None:
        im = im.crop(box if squash else (box[0], 0, box[2], im.size[1]))
        top = box[1]
    upright = im.size
    im = im.rotate(float(rng.uniform(-cfg.glyph_rotation, cfg.glyph_rotation)), Image.Resampling.BILINEAR,
                   expand=True)
    w, h = im.size
    target = upright if squash else (w, h)  # the box the warped ink is fitted into
    dx = target[0] * float(rng.uniform(0.1, 0.3)) * cfg.glyph_warp
    dy = target[1] * float(rng.uniform(0.2, 0.3)) * cfg.glyph_warp
    x1, x2 = (int(v) for v in rng.uniform(-dx, dx, 2))
    y1, y2 = (int(v) for v in rng.uniform(-dy, dy, 2))
    w2, h2 = w + abs(x1) + abs(x2), h + abs(y1) + abs(y2)
    quad = (x1, y1, -x1, h2 - y2, w2 + x2, h2 + y2, w2 - x2, -y1)
    im = im.resize((w2, h2), Image.Resampling.BILINEAR).transform(target, Image.Transform.QUAD, quad,
                                                                  Image.Resampling.BILINEAR)
    if not squash:
        return im
    line = Image.new("L", (upright[0], line_h), 0)
    line.paste(im.point(_BOLD), (0, top))  # the package's lookup table (x1.97): soft edges become solid ink
    return line


def glyph_mask(text: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """An ink mask ("L", 255 = ink) of ``text``, tightly cropped, with clutter drawn across it."""
    size: int = font.size  # type: ignore[assignment]  # an int for the fonts load_font opens
    # only configs that ask for squashed glyphs draw for it, so other datasets keep their bytes
    squash = cfg.glyph_squash > 0 and rng.random() < cfg.glyph_squash
    glyphs = [None if ch == " " else _glyph(ch, font, rng, cfg, squash) for ch in text]
    widths = [g.size[0] for g in glyphs if g is not None]
    avg = sum(widths) / max(1, len(widths))
    space = max(font.getlength(" "), 0.3 * size)
    height = max([g.size[1] for g in glyphs if g is not None] + [size]) + size // 2
    canvas = Image.new("L", (int(sum(widths) + space * 2 * text.count(" ") + size * 2), height), 0)
    x = size // 2
    for g in glyphs:
        if g is None:  # a word space: wider than any letter gap below
            x += int(space * rng.uniform(1.5, 2.2))
            continue
        w, h = g.size
        y = (height - h) // 2 + int(rng.integers(-size // 10, size // 10 + 1))
        region = (x, y, x + w, y + h)
        canvas.paste(ImageChops.lighter(canvas.crop(region), g), region)
        # crowd letters like the captcha package, or leave a small gap
        x += w - int(rng.uniform(0.0, cfg.glyph_overlap) * avg) if rng.random() < 0.7 else \
            w + int(rng.uniform(0.0, 0.12) * size)
    box = canvas.getbbox()
    if box is not None:
        canvas = canvas.crop((0, max(0, box[1] - size // 8), box[2] + size // 4,
                              min(height, box[3] + size // 8)))
    return clutter(canvas, rng, size) if cfg.glyph_clutter else canvas


def clutter(mask: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    """Noise dots and an arc across the text, in the ink colour (as in CAPTCHAs)."""
    w, h = mask.size
    draw = ImageDraw.Draw(mask)
    stroke = max(1, round(size / 16))
    for _ in range(int(rng.integers(0, max(2, int(30 * w * h / (160 * 60))) + 1))):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        draw.line(((x, y), (x - 1, y - 1)), fill=255, width=stroke + 1)
    if rng.random() < 0.8:
        x1 = float(rng.uniform(0, w / 5))
        x2 = float(rng.uniform(w / 5, w)) + 1
        y1 = float(rng.uniform(h / 5, h - h / 5))
        y2 = float(rng.uniform(y1, h)) + 1
        start = float(rng.uniform(0, 20))
        draw.arc((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)), start, start + float(rng.uniform(140, 180)),
                 fill=255, width=stroke)
    return mask


def pad(mask: Image.Image, rng: np.random.Generator, cfg: SynthConfig, size: int) -> Image.Image:
    """Padding around a glyph mask by ``cfg.pad_x`` / ``cfg.pad_y`` (in font sizes)."""
    w, h = mask.size
    px = [math.floor(size * rng.uniform(*cfg.pad_x)) for _ in range(2)]
    py = [math.floor(size * rng.uniform(*cfg.pad_y)) for _ in range(2)]
    return mask.crop((-px[0], -py[0], w + px[1], h + py[1]))
