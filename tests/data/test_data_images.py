"""crnn.data.images: opening any image safely and turning it into a model-ready array."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import _png, png_claiming, render_text
from crnn.data.images import Preprocess, load_image, normalize_batch, preprocess_image
from crnn.errors import CrnnError, DataError


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_pillow_mode_becomes_a_valid_array(mode):
    base = render_text("Ab", height=40).convert("RGB")
    img = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    pre = Preprocess(height=32)
    a = preprocess_image(_png(img) if mode not in ("F", "CMYK", "I") else img, pre)
    assert a.dtype == np.uint8 and a.shape[0] == 32 and a.ndim == 2
    assert a.min() < 100 and a.max() > 150  # the text survived the conversion


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("L", (100, 20), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (20, 100)


def test_extreme_sizes_and_widths():
    pre = Preprocess(height=32, min_width=16)
    assert preprocess_image(np.zeros((1, 1), np.uint8), pre).shape == (32, 32)
    assert preprocess_image(np.zeros((200, 3), np.uint8), pre).shape == (32, 16)
    assert preprocess_image(np.zeros((20, 20000), np.uint8), pre).shape == (32, 32000)  # full width, never squeezed
    assert preprocess_image(np.zeros((60, 160, 3), np.uint8), Preprocess(height=32, channels=3)).shape == (32, 85, 3)
    with pytest.raises(DataError, match="over the 65,536 px limit"):
        preprocess_image(np.zeros((1, 4000), np.uint8), pre)  # 128,000 px at height 32


def test_narrow_images_are_padded_not_stretched():
    """A narrow glyph keeps its shape: the image is resized to the height, then padded with its last column."""
    a = np.full((32, 4), 255, np.uint8)
    a[:, 0] = 0  # a black left column, white elsewhere
    out = preprocess_image(a, Preprocess(height=32, min_width=16))
    assert out.shape == (32, 16)
    assert (out[:, 0] == 0).all() and (out[:, 1:] == 255).all()  # stretching would have widened the black bar


def test_bad_files_get_one_line_errors(tmp_path):
    good = _png(render_text("A"))
    cases = {"trunc.png": good[: len(good) // 2], "text.png": b"hello world", "zero.png": b"",
             "doc.jpg": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as e:
            load_image(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)


def test_decompression_bomb_refused(tmp_path):
    Image.new("1", (12000, 12000)).save(tmp_path / "bomb.png")
    with pytest.raises(DataError, match="decompression bomb"):
        load_image(tmp_path / "bomb.png", max_pixels=40_000_000 // 1000)


def test_normalize_batch_pads_with_last_column():
    a = np.full((4, 3), 255, np.uint8)
    b = np.zeros((4, 5), np.uint8)
    x, w = normalize_batch([a, b], 1)
    assert x.shape == (2, 1, 4, 5) and list(w) == [3, 5]
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)


def test_decompression_bomb_is_refused_without_allocating(tmp_path):
    """In a fresh process capped at 1.5 GiB of address space: refused quickly, memory barely moves."""
    (tmp_path / "header.png").write_bytes(png_claiming(100_000, 100_000))      # would be 10 GB
    (tmp_path / "pixels.png").write_bytes(png_claiming(10_000, 5_000, rows=5_000))  # real data, 50 MB
    code = textwrap.dedent(f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        from crnn.data.images import Preprocess, preprocess_image
        from crnn.errors import DataError
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name in ("header.png", "pixels.png"):
            t = time.perf_counter()
            try:
                preprocess_image(r"{tmp_path}/" + name, Preprocess())
                print("LOADED", name)
            except DataError as e:
                print("REFUSED", round(time.perf_counter() - t, 3), e)
        print("GROWTH_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == ["REFUSED", "REFUSED", "GROWTH_KB"], res.stdout
    for ln in lines[:2]:
        assert float(ln.split()[1]) < 1.0 and "decompression bomb" in ln
    assert int(lines[2].split()[1]) < 20_000  # KB: nowhere near the 50 MB (or 10 GB) the pixels would take


def test_bomb_limit_is_the_configured_one(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(3_000, 1_000, rows=1_000))
    assert load_image(path).size == (3_000, 1_000)
    with pytest.raises(CrnnError, match=r"big.png: refused as a possible decompression bomb \(3000x1000 pixels"):
        load_image(path, max_pixels=1_000_000)


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
         "I", "I;16", "I;16B", "I;16L", "F"]

TIFF_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F"}


@SETTINGS
@given(mode=st.sampled_from(MODES), width=st.integers(1, 300), height=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1), as_file=st.booleans(), exif=st.integers(1, 8),
       pre=st.builds(Preprocess, height=st.sampled_from([16, 32, 48]), channels=st.sampled_from([1, 3]),
                     min_width=st.integers(1, 32)))
@example(mode="F", width=3, height=2, seed=0, as_file=False, exif=1, pre=Preprocess())
def test_any_image_becomes_a_model_array(mode, width, height, seed, as_file, exif, pre):
    """Any size, any mode, random pixels (NaN and infinities included for F), with or without an EXIF
    rotation: a uint8 array of the configured height, its aspect ratio kept (padded up to min_width)."""
    n = len(Image.new(mode, (width, height)).tobytes())
    img = Image.frombytes(mode, (width, height), np.random.default_rng(seed).bytes(n))
    if mode == "P":
        img.putpalette(np.random.default_rng(seed + 1).bytes(768))
    source: Image.Image | bytes = img
    upright = (width, height)
    if as_file and mode in TIFF_MODES:
        info = Image.Exif()
        info[0x0112] = exif
        buf = io.BytesIO()
        img.save(buf, "TIFF", exif=info)
        source = buf.getvalue()
        upright = (height, width) if exif >= 5 else (width, height)
    with np.errstate(all="raise"):  # no silent NaN casts
        a = preprocess_image(source, pre)
    assert a.dtype == np.uint8 and a.shape[0] == pre.height
    assert a.ndim == (2 if pre.channels == 1 else 3) and (pre.channels == 1 or a.shape[2] == 3)
    assert a.shape[1] == max(pre.min_width, max(1, round(upright[0] * pre.height / upright[1])))
    assert a.shape[1] == pre.target_width(*upright)
