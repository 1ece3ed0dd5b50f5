"""Property tests (hypothesis): charset, greedy CTC decoding, preprocessing, the labels-file parser.

Bounded (``max_examples``) and without deadlines, so they stay quick and steady on a
busy machine. Each property states what must hold for *every* input, not for a few
hand-picked ones.
"""

from __future__ import annotations

import io
import itertools
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from crnn.charset import BLANK, Charset, normalize
from crnn.data.images import Preprocess, preprocess_image
from crnn.data.sources import open_source
from crnn.decoding.greedy import greedy_decode
from crnn.errors import DataError

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that make Unicode normalisation interesting: combining marks, letters they compose with,
# Hangul jamo (which compose with each other), singletons NFC replaces (ANGSTROM SIGN, KELVIN SIGN), a
# mark that NFC splits in two (U+0344), precomposed letters, and characters some parsers treat as line breaks.
TRICKY = ("e\u0301zxAa\u00e9\u0301\u0323\u0308\u030a\u1100\u1161\u11a8\uac00\u212b\u212a\u0344\u00c5"
          "\u0915\u093c\u0958\u2028-_ \u00a0")
label_chars = st.one_of(st.sampled_from(TRICKY),
                        st.characters(blacklist_categories=("Cc", "Cs")))
labels = st.text(label_chars, min_size=1, max_size=12)


# ------------------------------------------------------------------------------------------------ charset


@SETTINGS
@given(st.lists(labels, min_size=1, max_size=8))
@example(["x\u0301z", "z"])        # sorted, 'z' lands before U+0301 and NFC would merge them into one character
@example(["\u1100", "\u1161"])     # Hangul L + V jamo compose into a syllable
@example(["\u212b", "\u00c5"])     # ANGSTROM SIGN is A-ring after NFC
def test_charset_from_labels_accepts_and_round_trips_every_label(texts):
    cs = Charset.from_labels(texts)
    assert unicodedata.is_normalized("NFC", cs.chars)
    assert Charset(cs.chars) == cs  # what a checkpoint stores rebuilds the very same charset
    assert cs.num_classes == len(cs.chars) + 1 and len(set(cs.chars)) == len(cs.chars)
    for text in texts:
        assert not cs.unknown(text)
        ids = cs.encode(text)
        assert all(1 <= i <= len(cs) for i in ids) and BLANK not in ids
        assert cs.decode(ids) == normalize(text)


@SETTINGS
@given(st.text(label_chars, min_size=1, max_size=10), st.text(label_chars, max_size=12))
def test_charset_accepts_exactly_the_text_it_can_encode(chars, text):
    cs = Charset(chars)
    unknown = cs.unknown(text)
    if unknown:
        with pytest.raises(DataError) as e:
            cs.encode(text)
        assert repr("".join(sorted(unknown))) in str(e.value)  # named, escaped where not printable
    else:
        assert cs.decode(cs.encode(text)) == normalize(text)
        assert cs.decode(cs.encode(normalize(text))) == normalize(text)
        assert cs.encode(unicodedata.normalize("NFD", text)) == cs.encode(text)


@SETTINGS
@given(st.text(st.characters(whitelist_categories=("Cc",)), min_size=1, max_size=3), st.text(max_size=5))
def test_charset_refuses_control_characters(ctrl, rest):
    with pytest.raises(DataError, match="control character"):
        Charset(rest + ctrl)


# ------------------------------------------------------------------------------------- greedy CTC decoding


def _collapse(path: np.ndarray, blank: int) -> list[int]:
    return [int(k) for k, _ in itertools.groupby(path.tolist()) if k != blank]


log_prob_matrices = hnp.arrays(
    np.float32, st.tuples(st.integers(0, 40), st.integers(1, 8)),
    elements=st.one_of(st.floats(-30, 0, width=32), st.just(-np.inf)))


@SETTINGS
@given(log_prob_matrices, st.data())
def test_greedy_decoding_properties(lp, data):
    t, c = lp.shape
    blank = data.draw(st.integers(0, c - 1), label="blank")
    res = greedy_decode(lp, blank=blank)
    assert len(res.indices) == len(res.frames)
    assert blank not in res.indices                                      # never emits the blank
    assert all(0 <= f < t for f in res.frames)                           # frames inside the matrix ...
    assert all(a < b for a, b in zip(res.frames, res.frames[1:]))        # ... strictly increasing
    best = lp.argmax(axis=1) if t else np.zeros(0, np.int64)
    assert list(res.indices) == _collapse(best, blank)                   # the collapsed best path
    assert all(best[f] == i for f, i in zip(res.frames, res.indices))    # emitted where the path has it
    for (f0, i0), (f1, i1) in zip(zip(res.frames, res.indices), zip(res.frames[1:], res.indices[1:])):
        if i0 == i1:                                                     # a repeat needs a blank in between
            assert blank in best[f0 + 1:f1].tolist()
    want = float(lp.max(axis=1).astype(np.float64).sum()) if t else 0.0
    assert res.log_prob == pytest.approx(want, rel=1e-5, abs=1e-4) or res.log_prob == want == -np.inf
    assert 0.0 <= res.confidence <= 1.0


# ------------------------------------------------------------------------------------------ preprocessing

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


# ------------------------------------------------------------------------------------- labels-file parser

LINE_BREAK = re.compile(r"\r\n|\r|\n")
no_breaks = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
path_parts = st.sampled_from(["img/a.png", "img/b.png", "./img/a.png", "img/../img/b.png", "../a.png", "/etc/passwd",
                              "img", "img/", "missing.png", "", " ", "y" * 300, "img/a.png\x00", "\u2028"])
lines = st.one_of(
    st.text(no_breaks, max_size=30),                                                     # anything at all
    st.tuples(path_parts, st.text(no_breaks, max_size=10)).map("\t".join),              # path TAB label
    st.tuples(path_parts, labels, st.text(no_breaks, max_size=5)).map("\t".join),       # an extra column
    st.sampled_from(["img/a.png\tAB", "img/b.png\t  x y ", "", "   ", "\t", "#comment"]),
)


@pytest.fixture(scope="module")
def label_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    (root / "img").mkdir()
    Image.new("L", (20, 10), 255).save(root / "img" / "a.png")
    Image.new("L", (20, 10), 255).save(root / "img" / "b.png")
    return root


def _check_parse(root: Path, file: Path, text: str) -> None:
    nonblank = [n for n, ln in enumerate(LINE_BREAK.split(text), 1) if ln.strip()]
    try:
        src = open_source(file)
    except DataError as e:  # only when no line gives a usable record
        msg = str(e)
        assert msg.startswith(str(file)) and "\n" not in msg and "\r" not in msg
        assert "empty" in msg or "no usable sample" in msg or "not valid UTF-8" in msg
        return
    skipped_lines = [int(name.rsplit(":", 1)[1]) for name, _ in src.skipped]
    assert len(src.records) + len(src.skipped) == len(nonblank)  # each non-blank line: a record or a skip
    assert len(set(skipped_lines)) == len(skipped_lines) and set(skipped_lines) <= set(nonblank)
    for name, reason in src.skipped:
        assert name.startswith(f"{file}:") and reason.strip()
        assert not any(ch in reason for ch in "\r\n\x85\u2028\u2029")  # one line, whatever the input
    for rec in src.records:
        assert rec.path is not None and rec.path.is_file()
        assert rec.path.resolve().is_relative_to(root.resolve())
        assert rec.label == normalize(rec.label) and rec.label.strip() == rec.label and rec.label
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in rec.label)
        Charset.from_labels([rec.label])  # any accepted label can be in a charset


@settings(max_examples=120, deadline=None)
@given(st.lists(lines, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_labels_file_lines_are_records_or_reasoned_skips(label_root, body, newline):
    text = newline.join(body)
    file = label_root / "labels.tsv"
    file.write_text(text, encoding="utf-8", newline="")
    _check_parse(label_root, file, text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_labels_file_of_arbitrary_bytes_never_crashes(label_root, raw):
    file = label_root / "gt.txt"
    file.write_bytes(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        with pytest.raises(DataError, match=r"line \d+ is not valid UTF-8"):
            open_source(file)
        return
    _check_parse(label_root, file, text)
