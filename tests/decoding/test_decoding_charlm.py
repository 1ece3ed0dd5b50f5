"""crnn.decoding.charlm: the character n-gram model of words, and its fusion with the CTC beam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crnn.charset import Charset
from crnn.decoding.beam import beam_search, ctc_sequence_log_prob
from crnn.decoding.charlm import CharLM, LMScorer, load_lm
from crnn.decoding.greedy import greedy_decode
from crnn.errors import ConfigError, DataError

WORDS = {"the": 50.0, "then": 10.0, "they": 10.0, "she": 8.0, "tree": 5.0, "hello": 3.0, "world": 3.0,
         "bean": 1.0, "bit": 1.0}
CHARSET = Charset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -'.,")


@pytest.fixture(scope="module")
def lm() -> CharLM:
    return CharLM.from_counts(WORDS, order=4)


def frames_for(text: str, charset: Charset, sure: float = 0.9) -> np.ndarray:
    """Log-probs that spell ``text``: one frame per character, a blank frame after each."""
    rows = []
    for ch in text:
        for cls in (charset.index(ch), 0):
            row = np.full(charset.num_classes, (1 - sure) / (charset.num_classes - 1))
            row[cls] = sure
            rows.append(row)
    return np.log(np.array(rows))


def with_doubt(lp: np.ndarray, frame: int, a: int, b: int, pa: float, pb: float) -> np.ndarray:
    """Frame ``frame`` split between classes ``a`` and ``b``."""
    out = lp.copy()
    row = np.full(lp.shape[1], (1 - pa - pb) / (lp.shape[1] - 2))
    row[a], row[b] = pa, pb
    out[frame] = np.log(row)
    return out


def test_each_context_is_a_distribution_and_words_outrank_non_words(lm):
    for ctx in ("", "t", "th", "the", "zq", "hello"):
        assert math.isclose(float(np.exp(lm.log_probs(ctx)).sum()), 1.0, rel_tol=1e-9)
    assert lm.word_log_prob("the") > lm.word_log_prob("tbe")
    assert lm.word_log_prob("THE") == lm.word_log_prob("the")  # case-folded: the LM never argues with case
    assert lm.word_log_prob("the") > lm.word_log_prob("then")  # counted more often
    assert lm.word_log_prob("th") < lm.word_log_prob("the")  # a word's end is scored, so cut words lose
    assert lm.word_log_prob("x7") == -math.inf  # not a word of letters


def test_fusion_settles_a_doubtful_glyph_but_not_a_clear_one(lm):
    scorer = LMScorer(lm, CHARSET, weight=0.3, bonus=0.0)
    h, b = CHARSET.index("h"), CHARSET.index("b")
    base = frames_for("the", CHARSET)
    # How much more the LM likes "the" than "tbe", in nats: the image has to beat that margin.
    margin = scorer.score(CHARSET.encode("the")) - scorer.score(CHARSET.encode("tbe"))
    assert margin > 1.0

    def leaning_to_b(nats: float) -> np.ndarray:  # the "h" frame, tilted to "b" by `nats`
        pb = 0.9 / (1 + math.exp(-nats))
        return with_doubt(base, 2, h, b, 0.9 - pb, pb)

    doubtful = leaning_to_b(margin - 1.0)
    assert CHARSET.decode(greedy_decode(doubtful).indices) == "tbe"
    assert CHARSET.decode(beam_search(doubtful, beam_width=8).indices) == "tbe"
    fused = beam_search(doubtful, beam_width=8, lm=scorer)
    assert CHARSET.decode(fused.indices) == "the"
    # The confidence stays what the image says about the returned text: its CTC probability.
    assert math.isclose(fused.log_prob, ctc_sequence_log_prob(np.maximum(doubtful, -1e4), fused.indices),
                        rel_tol=1e-6)
    clear = leaning_to_b(margin + 1.0)  # the image is surer of "tbe" than the LM is of "the"
    assert CHARSET.decode(beam_search(clear, beam_width=8, lm=scorer).indices) == "tbe"


def test_numbers_symbols_and_case_pass_through(lm):
    scorer = LMScorer(lm, CHARSET)
    for text in ("2024-10-09", "Hello World.", "THE TREE", "bit 7"):
        lp = frames_for(text, CHARSET)
        assert CHARSET.decode(beam_search(lp, beam_width=8, lm=scorer).indices) == text


def test_the_bonus_keeps_letters_the_lm_would_drop(lm):
    # Without a bonus every extra character costs LM probability: a faint last letter is dropped.
    n = CHARSET.index("n")
    lp = with_doubt(frames_for("then", CHARSET), 6, n, 0, 0.45, 0.50)  # the "n" frame: nearly blank
    assert CHARSET.decode(beam_search(lp, beam_width=8, lm=LMScorer(lm, CHARSET, weight=1.0, bonus=0.0)).indices) \
        == "the"
    assert CHARSET.decode(beam_search(lp, beam_width=8, lm=LMScorer(lm, CHARSET, weight=1.0, bonus=3.0)).indices) \
        == "then"


def test_lm_score_is_what_the_beam_adds_up(lm):
    scorer = LMScorer(lm, CHARSET, weight=0.7, bonus=0.2)
    text = "the tree"
    idx = CHARSET.encode(text)
    # The space after "the" scores its end; "tree" ends with the line.
    expected = 0.7 * (lm.word_log_prob("the") + lm.word_log_prob("tree")) + 0.2 * len(text)
    assert math.isclose(scorer.score(idx), expected, rel_tol=1e-9)
    # A symbol after a word ends it and costs the `other` probability (0.1); so does a digit outside a word.
    assert math.isclose(scorer.score(CHARSET.encode("the.7")),
                        0.7 * (lm.word_log_prob("the") + 2 * math.log(0.1)) + 0.2 * 5, rel_tol=1e-9)


def test_word_lists_and_errors(tmp_path):
    plain = tmp_path / "words.txt"
    plain.write_text("the cat sat\nthe hat\n", encoding="utf-8")
    lm = load_lm(plain)
    assert lm.num_words == 4 and lm.word_log_prob("the") > lm.word_log_prob("cat")
    counted = tmp_path / "counts.tsv"
    counted.write_text("cat\t5\ndog\t1\n", encoding="utf-8")
    assert CharLM.from_file(counted).word_log_prob("cat") > CharLM.from_file(counted).word_log_prob("dog")
    bad = tmp_path / "bad.tsv"
    bad.write_text("cat\t5\ndog\tmany\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: the count 'many' is not a number"):
        CharLM.from_file(bad)
    empty = tmp_path / "digits.txt"
    empty.write_text("123 456\n", encoding="utf-8")
    with pytest.raises(DataError, match="no word to build a language model from"):
        CharLM.from_file(empty)
    with pytest.raises(DataError, match="no such word list"):
        load_lm(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="weight must be a finite number >= 0"):
        LMScorer(lm, CHARSET, weight=-1.0)


def test_builtin_english_from_wordfreq():
    pytest.importorskip("wordfreq")
    lm = CharLM.builtin("en", size=3000)
    assert lm.word_log_prob("house") > lm.word_log_prob("hovse")
    assert lm.word_log_prob("people") > lm.word_log_prob("peopie")
    with pytest.raises(ConfigError, match="no word list for language 'xx'"):
        CharLM.builtin("xx")
