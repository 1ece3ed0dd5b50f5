"""crnn.charset: the alphabet's rules, by example and as hypothesis properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crnn.charset import BLANK, Charset, normalize
from crnn.errors import DataError


def test_blank_never_clashes_with_a_character():
    cs = Charset.from_labels(["a-b", "_ ", "0"])
    assert "-" in cs and BLANK not in [cs.index(c) for c in cs.chars]
    assert cs.decode(cs.encode("-a_b -")) == "-a_b -"
    assert cs.num_classes == len(cs.chars) + 1


def test_nfc_normalisation():
    composed, decomposed = "\u00e9", "e\u0301"
    cs = Charset.from_labels([decomposed])
    assert cs.chars == composed
    assert cs.encode(decomposed) == cs.encode(composed) == [1]


def test_unknown_characters_are_named():
    cs = Charset("ABC")
    assert cs.unknown("AXYX") == {"X": 2, "Y": 1}
    with pytest.raises(DataError, match="XY"):
        cs.encode("AXY")


def test_order_is_stable_and_duplicates_removed():
    assert Charset("BAB").chars == "BA"
    assert Charset.from_labels(["ba", "ab"]).chars == "ab"


def test_control_characters_refused():
    with pytest.raises(DataError):
        Charset("a\tb")
    with pytest.raises(DataError):
        Charset("")


def test_decode_skips_blank():
    cs = Charset("xy")
    assert cs.decode([0, 1, 0, 2, 2]) == "xyy"
    assert unicodedata.is_normalized("NFC", cs.chars)


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Characters that make Unicode normalisation interesting: combining marks, letters they compose with,
# Hangul jamo (which compose with each other), singletons NFC replaces (ANGSTROM SIGN, KELVIN SIGN), a
# mark that NFC splits in two (U+0344), precomposed letters, and characters some parsers treat as line breaks.
TRICKY = ("e\u0301zxAa\u00e9\u0301\u0323\u0308\u030a\u1100\u1161\u11a8\uac00\u212b\u212a\u0344\u00c5"
          "\u0915\u093c\u0958\u2028-_ \u00a0")

label_chars = st.one_of(st.sampled_from(TRICKY),
                        st.characters(blacklist_categories=("Cc", "Cs")))

labels = st.text(label_chars, min_size=1, max_size=12)


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
