"""crnn.synth.text: word-list and regular-expression text sources."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_synth_generate import png

from crnn.synth import (
    RegexGenerator,
    SynthConfig,
    sample_at,
)


def test_default_words_source_is_deterministic():
    pytest.importorskip("wordfreq")
    c = SynthConfig(system_fonts=False, channels=3)
    a = [sample_at(c, 1, i) for i in range(4)]
    b = [sample_at(c, 1, i) for i in range(4)]
    assert [s.text for s in a] == [s.text for s in b]
    assert [png(s.image) for s in a] == [png(s.image) for s in b]
    assert all(s.text.strip() == s.text and s.text for s in a)


PATTERNS = [
    r"\$\d{1,3}\.\d\d",
    r"\d{1,2}:[0-5]\d",
    r"[A-Z]{2,3}-?\d{2,4}",
    r"(19|20)\d\d-(0[1-9]|1[0-2])-[0-2]\d",
    r"(?:INV|PO)#[0-9A-F]{4,6}",
    r"[a-z]+( [a-z]+)*",
    r"\w{3}\s\w+?",
    r"x*y+z?",
    r"[^a-z0-9 ]{2}\.{,3}",
    r"a{3}b{2,}c{,2}",
    r"(ab|c(d|e)f)+",
    r"[\d\-_.]{1,5}",
    r"\D\W\S",
    r"^(?P<year>\d{4})$",
    r"[A-Z][a-z]{2,8} \d{1,2}(st|nd|rd|th)",
    r"\u20ac\d+,\d\d",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_generator_matches(pattern):
    gen = RegexGenerator(pattern)
    rng = np.random.default_rng(0)
    out = [gen(rng) for _ in range(150)]
    for s in out:
        assert re.fullmatch(pattern, s), (pattern, s)
    assert len(set(out)) > 1


@pytest.mark.parametrize("pattern", [r"(a)\1", r"a(?=b)", r"\bword", r"(ab", r"a)", r"[z-a]", r"*a", r"a**"])
def test_regex_generator_rejects_unsupported_or_invalid(pattern):
    with pytest.raises(ValueError):
        RegexGenerator(pattern)


def test_regex_text_source_and_charset_narrowing():
    c = SynthConfig(system_fonts=False, text=r"regex:[A-Z]{2}\d{3,5}", charset="ABC0123456789")
    for i in range(20):
        s = sample_at(c, 4, i)
        assert re.fullmatch(r"[A-C]{2}\d{3,5}", s.text)
