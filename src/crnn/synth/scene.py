"""What a real capture does to a rendered line: the looks of photographs and scans.

A crop from a photograph is not dark ink on a flat page: its background is a wall, a sign or a
shop front (smooth colour fields, edges and blocks of other colour), the text is coloured, often with
an outline or a shadow, at low contrast once turned to grey, seen at an angle or on a curved surface,
with the neighbouring lines' ink cut at the crop's edges, and it was often captured small and blown up.
A crop from a scanned page is binarised, with speckle. This module draws those, on top of the ink mask
that :mod:`crnn.synth.render` lays out, and only when a config asks for them (every probability here is 0
by default), so existing datasets keep their bytes.

Every random draw comes from the generator passed in, as in the rest of :mod:`crnn.synth`.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from crnn.synth.config import SynthConfig

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ------------------------------------------------------------------------------------- geometry (ink mask)


def curve(mask: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """Bend the baseline: each column moves up or down along an arc or a wave (text on a curved surface).

    ``strength`` is the largest displacement in units of the mask's height.
    """
    w, h = mask.size
    amp = rng.uniform(0.1, 1.0) * strength * h
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)
    if rng.random() < 0.6:  # an arc, either way
        d = amp * (x**2 - 0.5) * (1 if rng.random() < 0.5 else -1)
    else:  # a wave
        d = amp * np.sin(math.pi * (rng.uniform(0.5, 1.5) * x + rng.uniform(0, 2)))
    d = d - d.min()
    pad = int(math.ceil(d.max()))
    src = np.asarray(mask, dtype=np.uint8)
    out = np.zeros((h + pad, w), dtype=np.uint8)
    rows = np.arange(h + pad)[:, None] - np.rint(d).astype(np.int64)[None, :]
    ok = (rows >= 0) & (rows < h)
    cols = np.broadcast_to(np.arange(w)[None, :], rows.shape)
    out[ok] = src[rows[ok], cols[ok]]
    return Image.fromarray(out, mode="L")


def _perspective_coeffs(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Pillow's 8 PERSPECTIVE coefficients mapping output points ``dst`` to input points ``src``."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    sol = np.linalg.solve(np.asarray(a, dtype=np.float64), src.reshape(-1).astype(np.float64))
    return tuple(float(c) for c in sol)


def perspective(mask: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """View the line at an angle: each corner moves by up to ``strength`` x the height, then the ink is re-boxed."""
    w, h = mask.size
    j = strength * h
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    dst = src + rng.uniform(-j, j, size=(4, 2))
    # a vanishing side: one end taller than the other (the commonest case in street photographs)
    if rng.random() < 0.5:
        k = rng.uniform(0, j)
        side = [1, 2] if rng.random() < 0.5 else [0, 3]
        dst[side[0], 1] -= k
        dst[side[1], 1] += k
    dst -= dst.min(axis=0)
    ow, oh = (int(math.ceil(v)) + 1 for v in dst.max(axis=0))
    return mask.transform((ow, oh), Image.Transform.PERSPECTIVE, _perspective_coeffs(src, dst),
                          resample=Image.Resampling.BILINEAR)


# ------------------------------------------------------------------------------------- colour and background


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _LUMA


def _field(rng: np.random.Generator, w: int, h: int, cell: float) -> np.ndarray:
    gw, gh = max(2, math.ceil(w / cell) + 1), max(2, math.ceil(h / cell) + 1)
    coarse = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def photo_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float RGB: a base colour, smooth colour blobs at two scales, and sometimes blocks and edges."""
    base = rng.uniform(0, 255, 3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    for cell, amp in ((rng.uniform(0.5, 3.0) * h, rng.uniform(0, 60)), (rng.uniform(2, 10), rng.uniform(0, 25))):
        tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
        img += amp * _field(rng, w, h, cell)[..., None] * tint
    for _ in range(int(rng.integers(0, 3))):  # a block of another colour (a sign's border, a window, a sticker)
        x0, x1 = sorted(rng.integers(0, w + 1, 2))
        y0, y1 = sorted(rng.integers(0, h + 1, 2))
        if rng.random() < 0.5:  # a band across the whole line
            x0, x1 = 0, w
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * 0.4 + 0.6 * rng.uniform(0, 255, 3)
    if rng.random() < 0.5:  # uneven light
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(theta) + ys * math.sin(theta)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        img *= (1.0 + rng.uniform(-0.5, 0.5) * (t - 0.5))[..., None]
    return np.clip(img, 0, 255)


def _ink_colour(rng: np.random.Generator, bg_luma: float, gap: float) -> np.ndarray:
    """A colour whose luma differs from ``bg_luma`` by at least ``gap`` (darker or lighter, whichever fits)."""
    darker = bg_luma - gap >= 0 and (bg_luma + gap > 255 or rng.random() < 0.65)
    for _ in range(32):
        c = rng.uniform(0, 255, 3).astype(np.float32)
        if rng.random() < 0.4:  # greys are common (black, white, silver lettering)
            c[:] = c[0]
        lum = float(_luma(c))
        if (darker and lum <= bg_luma - gap) or (not darker and lum >= bg_luma + gap):
            return c
    v = max(0.0, bg_luma - gap) if darker else min(255.0, bg_luma + gap)
    return np.full(3, v, dtype=np.float32)


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def compose_scene(mask: Image.Image, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """Colour an output-size ink mask as a photographed word: background, ink, outline, shadow, neighbours.

    Returns an RGB image; the caller converts it to the config's mode (so grey models see colours as
    their luma, low contrast included).
    """
    w, h = mask.size
    m = np.asarray(mask, dtype=np.float32) / 255.0
    bg = photo_background(rng, w, h)
    gap = rng.uniform(cfg.scene_min_contrast, max(cfg.scene_min_contrast, 160.0))
    ink = _ink_colour(rng, float(_luma(bg.reshape(-1, 3)).mean()), gap)
    if rng.random() < 0.25:  # neighbouring lines' ink, cut by the crop's top or bottom edge
        for sign in (-1, 1):
            if rng.random() < 0.6:
                dy = int(sign * h * rng.uniform(0.75, 1.0))
                other = _shift(m, int(rng.integers(-w // 3, w // 3 + 1)), dy)
                bg = bg * (1 - other[..., None]) + other[..., None] * ink
    img = bg
    if rng.random() < cfg.shadow_prob:  # a drop shadow
        d = max(1, round(h * rng.uniform(0.02, 0.08)))
        sh = _shift(m, d * int(rng.choice([-1, 1])), d)
        sh = np.asarray(Image.fromarray((sh * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(rng.uniform(0, 0.06) * h)), dtype=np.float32) / 255.0
        shade = np.clip(ink * rng.uniform(0.0, 0.5), 0, 255)
        img = img * (1 - sh[..., None]) + sh[..., None] * shade
    if rng.random() < cfg.outline_prob:  # an outline (stroke) around the letters, in a contrasting colour
        r = max(3, 2 * round(h * rng.uniform(0.02, 0.06)) + 1)
        dil = np.asarray(mask.filter(ImageFilter.MaxFilter(r)), dtype=np.float32) / 255.0
        edge_col = _ink_colour(rng, float(_luma(ink)), rng.uniform(60, 160))
        img = img * (1 - dil[..., None]) + dil[..., None] * edge_col
    img = img * (1 - m[..., None]) + m[..., None] * ink
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), mode="RGB")


# ------------------------------------------------------------------------------------- capture


def low_resolution(img: Image.Image, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """Captured small, then upscaled: down to a random height in ``cfg.lowres_height`` and back."""
    w, h = img.size
    small_h = int(rng.integers(cfg.lowres_height[0], cfg.lowres_height[1] + 1))
    if small_h >= h:
        return img
    small = img.resize((max(1, round(w * small_h / h)), small_h), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.BICUBIC if rng.random() < 0.5 else Image.Resampling.BILINEAR)


def binarize(img: Image.Image, rng: np.random.Generator, cfg: SynthConfig) -> Image.Image:
    """A scanner's black-and-white output: a threshold near the middle, then salt-and-pepper speckle."""
    a = np.asarray(img.convert("L"), dtype=np.float32)
    thr = 0.5 * (float(a.min()) + float(a.max())) + rng.uniform(-20, 20)
    out = np.where(a > thr, 255, 0).astype(np.uint8)
    if cfg.speckle > 0:
        n = rng.uniform(0, cfg.speckle)
        flip = rng.random(out.shape) < n
        out[flip] = 255 - out[flip]
    res = Image.fromarray(out, mode="L")
    return res if img.mode == "L" else res.convert(img.mode)
