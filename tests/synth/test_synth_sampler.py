"""crnn.synth.sampler: drawn texts honour the charset restriction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_synth_generate import WORDS

from crnn.synth import (
    SynthConfig,
    sample_at,
)


@pytest.fixture(scope="module")
def words_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("words") / "words.txt"
    p.write_text("\n".join(WORDS.split()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def cfg(words_file) -> SynthConfig:
    """Independent of installed system fonts and of wordfreq."""
    return SynthConfig(system_fonts=False, text=f"words:{words_file}", punct_prob=0.3, pattern_prob=0.2)


def test_charset_restriction_honoured(cfg):

    allowed = "abcdefghijklmnopqrstuvwxyz0123456789 "
    c = dataclasses.replace(cfg, charset=allowed)
    texts = [sample_at(c, 9, i).text for i in range(40)]
    assert all(set(t) <= set(allowed) for t in texts), texts
    # without the restriction the same source does emit other characters (the check can fail)
    free = [sample_at(cfg, 9, i).text for i in range(40)]
    assert any(not set(t) <= set(allowed) for t in free)
