"""Draw one line of text into an image: geometry, colours, background, degradations.

Only the ``numpy.random.Generator`` passed in is used for randomness, so the same
generator state, text, font and config give the same bytes (with the same Pillow,
FreeType and libjpeg builds; the basic layout engine is used so raqm plays no part).
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from crnn.synth import glyphs, scene
from crnn.synth.config import SynthConfig
from crnn.synth.fonts import draws_all, load_font, missing_chars

_RESAMPLE = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS, Image.Resampling.BOX)
_LUMA = np.array([0.299, 0.587, 0.114])


def luminance(rgb) -> float:
    """Rec. 601 luma of an RGB triple (0-255)."""
    return float(np.dot(np.asarray(rgb, dtype=np.float64), _LUMA))


def _colour(rng: np.random.Generator, lo: float, hi: float, colourful: bool) -> tuple[int, int, int]:
    """A colour whose luminance lies in [lo, hi]: a random hue when ``colourful``, else a grey."""
    lo, hi = max(0.0, lo), min(255.0, hi)
    if colourful:
        for _ in range(16):
            c = rng.integers(0, 256, 3)
            if lo <= luminance(c) <= hi:
                return int(c[0]), int(c[1]), int(c[2])
    a, b = math.ceil(lo), math.floor(hi)
    v = int(rng.integers(a, b + 1)) if a <= b else round((lo + hi) / 2)
    return v, v, v


def pick_colours(rng: np.random.Generator, cfg: SynthConfig, amplitude: float, n_bg: int):
    """(text colour, [background colours]) with luminance apart by ``min_contrast + amplitude``."""
    colourful = cfg.channels == 3 and rng.random() < cfg.color_prob
    gap = cfg.min_contrast + amplitude
    if rng.random() < cfg.dark_text_prob:
        fg = _colour(rng, 0.0, 254.0 - gap, colourful)
        lo, hi = luminance(fg) + gap, 255.0
    else:
        fg = _colour(rng, gap + 1.0, 255.0, colourful)
        lo, hi = 0.0, luminance(fg) - gap
    bgs = [_colour(rng, lo, hi, colourful) for _ in range(n_bg)]
    return fg, bgs


def _smooth_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A (h, w) field in [-1, 1]: coarse blobs plus some fine grain (paper, fabric, scans)."""
    cell = float(rng.uniform(2.0, 16.0))
    gw, gh = max(2, math.ceil(w / cell) + 1), max(2, math.ceil(h / cell) + 1)
    coarse = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), mode="F")
    field = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    field = field + float(rng.uniform(0.0, 0.6)) * rng.standard_normal((h, w)).astype(np.float32)
    peak = float(np.abs(field).max())
    return field / peak if peak > 0 else field


def make_background(rng: np.random.Generator, cfg: SynthConfig, w: int, h: int):
    """(background image, text colour): flat, gradient or noise texture, by ``cfg.background_mix``."""
    p = np.asarray(cfg.background_mix, dtype=np.float64)
    kind = int(rng.choice(3, p=p / p.sum()))
    mode = "L" if cfg.channels == 1 else "RGB"
    if kind == 0:  # flat
        fg, (bg,) = pick_colours(rng, cfg, 0.0, 1)
        img = Image.new(mode, (w, h), bg[0] if mode == "L" else bg)
        return img, fg
    if kind == 1:  # linear gradient between two colours, any direction
        fg, (c0, c1) = pick_colours(rng, cfg, 0.0, 2)
        theta = rng.uniform(0.0, 2 * math.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xs * math.cos(theta) + ys * math.sin(theta)
        t -= t.min()
        t /= max(float(t.max()), 1e-6)
        a = np.asarray(c0, dtype=np.float32)
        b = np.asarray(c1, dtype=np.float32)
        arr = a + t[..., None] * (b - a)
    else:  # noise texture around a base colour
        amp = float(rng.uniform(0.0, cfg.texture_strength))
        fg, (base,) = pick_colours(rng, cfg, amp, 1)
        field = _smooth_noise(rng, w, h)
        arr = np.asarray(base, dtype=np.float32) + amp * field[..., None]
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if mode == "L" else arr, mode=mode)
    return img, fg


def _affine(shear: float, degrees: float) -> np.ndarray:
    """2x2 forward map: slant (top to the right for shear > 0), then rotate (counter-clockwise)."""
    s = np.array([[1.0, -shear], [0.0, 1.0]])
    a = math.radians(degrees)
    r = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y points down
    return r @ s


def render(text: str, font_path: str | os.PathLike, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """An image of ``text`` in the font at ``font_path``, ``cfg.height`` pixels high.

    Raises ``ValueError`` if the font has no glyph for some character: a font is never
    used for a character it lacks.
    """
    font_path = str(font_path)
    lacking = missing_chars(font_path, text)
    if lacking:
        raise ValueError(f"{font_path}: no glyph for {lacking!r}")
    if not text.strip():
        raise ValueError("nothing to render: the text is empty or blank")
    if not draws_all(font_path, text):
        raise ValueError(f"{font_path}: an empty glyph for some character of {text!r}")

    lo, hi = cfg.font_size_range()
    size = int(rng.integers(lo, hi + 1))
    font = load_font(font_path, size)
    # only configs that ask for glyph distortion draw for it, so other datasets keep their bytes
    if cfg.glyph_warp_prob > 0 and rng.random() < cfg.glyph_warp_prob:
        mask = glyphs.pad(glyphs.glyph_mask(text, font, rng, cfg), rng, cfg, size)
        return _finish(mask, rng, cfg)
    ascent, descent = font.getmetrics()
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    advance = font.getlength(text)
    x0, y0 = min(left, 0), min(top, -ascent)
    x1, y1 = max(right, math.ceil(advance)), max(bottom, descent)
    margin = 2
    w0, h0 = int(x1 - x0) + 2 * margin, int(y1 - y0) + 2 * margin
    ox, oy = margin - x0, margin - y0  # where the baseline starts
    mask = Image.new("L", (w0, h0), 0)
    ImageDraw.Draw(mask).text((ox, oy), text, fill=255, font=font, anchor="ls")

    # --- slant and rotation --------------------------------------------------------------
    m = _affine(rng.uniform(-cfg.shear, cfg.shear), rng.uniform(-cfg.rotation, cfg.rotation))
    corners = np.array([[0, 0], [w0, 0], [0, h0], [w0, h0]], dtype=np.float64) - [ox, oy]
    moved = corners @ m.T
    mn = moved.min(axis=0)
    w1, h1 = (np.ceil(moved.max(axis=0) - mn)).astype(int)
    inv = np.linalg.inv(m)
    shift = mn  # output pixel q sits at forward point q + mn (relative to the baseline start)
    data = (
        inv[0, 0],
        inv[0, 1],
        inv[0] @ shift + ox,
        inv[1, 0],
        inv[1, 1],
        inv[1] @ shift + oy,
    )
    mask = mask.transform((int(w1), int(h1)), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
    line = np.array([[0, -ascent], [advance, -ascent], [0, descent], [advance, descent]]) @ m.T - mn

    # --- crop: ink box, stretched towards the line box, plus padding ---------------------
    ink = mask.getbbox()
    if ink is None:
        ink = (0, int(line[:, 1].min()), int(w1), int(math.ceil(line[:, 1].max())))
    ix0, iy0, ix1, iy1 = ink
    # only configs that ask for tight crops draw for them, so other datasets keep their bytes
    if cfg.tight_prob > 0 and rng.random() < cfg.tight_prob:
        mg = [size * rng.uniform(*cfg.tight_margin) for _ in range(4)]
        box = (math.floor(ix0 - mg[0]), math.floor(iy0 - mg[1]), math.ceil(ix1 + mg[2]), math.ceil(iy1 + mg[3]))
        return _finish(mask.crop(box), rng, cfg)
    line_top = min(float(line[:, 1].min()), iy0)
    line_bottom = max(float(line[:, 1].max()), iy1)
    top_edge = iy0 - rng.uniform(0.0, 1.0) * (iy0 - line_top)
    bottom_edge = iy1 + rng.uniform(0.0, 1.0) * (line_bottom - iy1)
    pads = [size * rng.uniform(*cfg.pad_x), size * rng.uniform(*cfg.pad_y)]
    pads += [size * rng.uniform(*cfg.pad_x), size * rng.uniform(*cfg.pad_y)]
    box = (
        math.floor(ix0 - pads[0]),
        math.floor(top_edge - pads[1]),
        math.ceil(ix1 + pads[2]),
        math.ceil(bottom_edge + pads[3]),
    )
    mask = mask.crop(box)  # outside the canvas reads as 0: no ink
    return _finish(mask, rng, cfg)


def _finish(mask: Image.Image, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """Resize an ink mask to the output height, colour it over a background, degrade it."""
    # every draw below is gated by its probability, so configs that leave it at 0 keep their bytes
    if cfg.curve_prob > 0 and rng.random() < cfg.curve_prob:
        mask = scene.curve(mask, rng, cfg.curve)
    if cfg.perspective_prob > 0 and rng.random() < cfg.perspective_prob:
        mask = scene.perspective(mask, rng, cfg.perspective)
    w, h = mask.size

    # --- resize the ink to the output height, then colour it at that size ------------------
    out_h = cfg.height
    aspect = w / h * (1.0 + rng.uniform(-cfg.stretch, cfg.stretch))
    out_w = max(1, round(out_h * aspect))
    mask = mask.resize((out_w, out_h), _RESAMPLE[int(rng.integers(len(_RESAMPLE)))])
    mode = "L" if cfg.channels == 1 else "RGB"
    if cfg.scene_prob > 0 and rng.random() < cfg.scene_prob:
        img = scene.compose_scene(mask, rng, cfg).convert(mode)
    else:
        bg, fg = make_background(rng, cfg, out_w, out_h)
        ink_img = Image.new(bg.mode, (out_w, out_h), fg[0] if bg.mode == "L" else fg)
        img = Image.composite(ink_img, bg, mask)
    if cfg.lowres_prob > 0 and rng.random() < cfg.lowres_prob:
        img = scene.low_resolution(img, rng, cfg)

    # --- degradations at output resolution ------------------------------------------------
    if cfg.blur > 0 and rng.random() < cfg.blur_prob:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, max(cfg.blur, 0.2))))
    if cfg.noise > 0 and rng.random() < cfg.noise_prob:
        arr = np.asarray(img, dtype=np.float32)
        arr = arr + rng.normal(0.0, rng.uniform(1.0, max(cfg.noise, 1.0)), arr.shape).astype(np.float32)
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode=img.mode)
    if cfg.binarize_prob > 0 and rng.random() < cfg.binarize_prob:
        img = scene.binarize(img, rng, cfg)
    if rng.random() < cfg.jpeg_prob:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        buf.seek(0)
        img = Image.open(buf)
        img.load()
        img = img.convert(mode)
    return img
