"""Opening images safely and turning them into model-ready arrays (NumPy only).

Everything a model sees passes through :func:`load_image` and :func:`to_model_array`,
in training, evaluation, prediction, export checks and the HTTP service, so the
preprocessing can never drift between them. The exact parameters are stored in
every checkpoint (:class:`Preprocess`).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crnn.errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm"}

ImageLike = str | os.PathLike | bytes | Image.Image | np.ndarray


MAX_MODEL_WIDTH = 65_536
"""Widest model input, in pixels after resizing (an aspect ratio of about 1,400:1 at 48 px): a guard against
an image that would need gigabytes, not a clamp. Nothing narrower is ever squeezed."""


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input; saved in checkpoints and reused everywhere.

    The aspect ratio is never changed: an image is resized to ``height`` and keeps its width, however wide
    (the network is convolutional plus an RNN, so it reads any width). Images narrower than ``min_width``
    are padded, not stretched. Older checkpoints carry a ``max_width`` key; it is ignored (it used to squeeze
    long lines, which turned a 1,500 px scanned line into garbage).
    """

    height: int = 32
    channels: int = 1
    min_width: int = 16
    max_pixels: int = 40_000_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def resized_width(self, width: int, height: int) -> int:
        """Width of the image itself after resizing to ``self.height`` with the aspect ratio kept."""
        return max(1, round(width * self.height / max(height, 1)))

    def target_width(self, width: int, height: int) -> int:
        """Width of the model input: the resized width, padded up to ``min_width``."""
        return max(self.resized_width(width, height), self.min_width)


def _open(source: str | os.PathLike | bytes, name: str, max_pixels: int) -> Image.Image:
    # A file object, not a path: given a path, Pillow memory-maps uncompressed single-strip images, and on
    # that path (Pillow 13) a TIFF with EXIF orientation 5-8 decodes to scrambled pixels.
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not an image") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read the file ({e.strerror or e})") from None
    try:
        with fp, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            w, h = img.size
            if w * h > max_pixels:
                raise DataError(f"{name}: refused as a possible decompression bomb ({w}x{h} pixels, over the "
                                f"{max_pixels:,}-pixel limit); not loaded")
            img.load()
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, UnidentifiedImageError):
            raise DataError(f"{name}: not an image (Pillow cannot identify it)") from None
        raise DataError(f"{name}: refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise DataError(f"{name}: truncated or corrupt image ({e})") from None
    if img.width < 1 or img.height < 1:
        raise DataError(f"{name}: image has no pixels")
    return img


def load_image(source: ImageLike, name: str | None = None, max_pixels: int = 40_000_000) -> Image.Image:
    """Open a path, bytes, PIL image or array as an upright RGB or L image.

    EXIF orientation is honoured; transparency is composited on white; 16-bit
    and float images are rescaled to 8 bits by their own range.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, name or "array")
    if isinstance(source, Image.Image):
        img = source
        name = name or "image"
    else:
        name = name or (str(source) if not isinstance(source, bytes) else "bytes")
        img = _open(source, name, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not lose an otherwise good image
        pass
    try:
        return _to_8bit(img)
    except (ValueError, OSError) as e:  # a mode Pillow opens but cannot convert
        raise DataError(f"{name}: unsupported image mode {img.mode} ({e})") from None


def _from_array(a: np.ndarray, name: str) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise DataError(f"{name}: expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if 0.0 <= lo and hi <= 1.0:
            a = a * 255.0
        elif hi > 255 or lo < 0:
            a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
        a = np.nan_to_num(a).clip(0, 255).astype(np.uint8)
    return _to_8bit(Image.fromarray(a))


def _to_8bit(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F", "I;16N"):
        a = np.asarray(img)
        finite = a[np.isfinite(a)]  # a float image may hold NaN or infinities: scale by the finite range
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo).astype(np.float64)
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.clip(0, 255).astype(np.uint8), "L")
    if mode in ("La", "RGBa"):  # premultiplied alpha: Pillow converts these only to their plain-alpha modes
        img = img.convert("LA" if mode == "La" else "RGBA")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or img.mode == "RGBA":
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L")
    return img.convert("RGB")


def to_model_array(img: Image.Image, pre: Preprocess, name: str = "image") -> np.ndarray:
    """Resize to ``pre.height`` keeping the aspect ratio; uint8 array (H, W) or (H, W, 3).

    An image narrower than ``pre.min_width`` is padded on the right by repeating its last column (as
    batches pad), so a single narrow letter is not stretched into another shape.
    """
    img = img.convert("L" if pre.channels == 1 else "RGB")
    w = pre.resized_width(img.width, img.height)
    if w > MAX_MODEL_WIDTH:
        raise DataError(f"{name}: {img.width}x{img.height} pixels is {w:,} px wide at height {pre.height}, over "
                        f"the {MAX_MODEL_WIDTH:,} px limit (cut the line into pieces)")
    if (w, pre.height) != img.size:
        img = img.resize((w, pre.height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    a = np.asarray(img, dtype=np.uint8)
    if w < pre.min_width:
        a = np.concatenate([a, np.repeat(a[:, -1:], pre.min_width - w, axis=1)], axis=1)
    return a


def preprocess_image(source: ImageLike, pre: Preprocess, name: str | None = None) -> np.ndarray:
    """:func:`load_image` then :func:`to_model_array`."""
    return to_model_array(load_image(source, name, pre.max_pixels), pre, name or "image")


def normalize_batch(arrays: list[np.ndarray], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack uint8 images of one height into a float32 (B, C, H, Wmax) batch in [-1, 1].

    Narrower images are padded by repeating their last column (it looks like the
    background, unlike a black bar); the true widths are returned so the CTC input
    lengths follow each image's real width.
    """
    widths = np.array([a.shape[1] for a in arrays], dtype=np.int64)
    wmax = int(widths.max())
    h = arrays[0].shape[0]
    out = np.empty((len(arrays), channels, h, wmax), dtype=np.float32)
    for i, a in enumerate(arrays):
        a = a[:, :, None] if a.ndim == 2 else a
        x = a.transpose(2, 0, 1).astype(np.float32) * (2.0 / 255.0) - 1.0
        out[i, :, :, : a.shape[1]] = x
        if a.shape[1] < wmax:
            out[i, :, :, a.shape[1]:] = x[:, :, -1:]
    return out, widths


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
