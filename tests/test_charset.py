import unicodedata

import pytest

from crnn.charset import BLANK, Charset
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
