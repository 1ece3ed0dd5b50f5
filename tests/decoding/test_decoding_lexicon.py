"""crnn.decoding.lexicon: lexicon-constrained decoding and loading word lists."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_decoding_beam import peaked, random_log_probs, random_path

from conftest import one_error_line
from crnn.cli import main
from crnn.decoding.beam import ctc_align, ctc_sequence_log_prob
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.lexicon import Lexicon

ABC = {"A": 1, "B": 2, "O": 3, "K": 4}


def exhaustive_best(lex: Lexicon, lp: np.ndarray, blank: int = 0) -> float:
    return max(ctc_sequence_log_prob(lp, lex.sequences[i], blank) for i in range(len(lex)))


def check_lexicon_decode(lex: Lexicon, lp: np.ndarray, **kwargs) -> None:
    res = lex.decode(lp, **kwargs)
    word = lex.word(res.indices)
    assert word in lex.words
    exact = ctc_sequence_log_prob(lp, res.indices)
    assert res.log_prob == pytest.approx(exact, abs=1e-7) or res.log_prob == exact == -np.inf
    if kwargs.get("exact", True) and kwargs.get("max_nodes") is None:
        best = exhaustive_best(lex, lp)
        assert res.log_prob == pytest.approx(best, abs=1e-7) or res.log_prob == best == -np.inf


ADVERSARIAL = ["BOOK", "BOK", "BOOKS", "B", "BO", "BOO", "OK", "KO", "OOO", "O", "KOOK", "BOB", "BOBO", "ABBA"]


@pytest.mark.parametrize("planted", ["BOOK", "BOK", "BOO", "B", "OOO", "BOBO"])
def test_lexicon_repeats_and_prefixes(planted):
    charset = "ABOKS"
    lex = Lexicon(ADVERSARIAL, charset)
    rng = np.random.default_rng(len(planted))
    label = [charset.index(ch) + 1 for ch in planted]
    lp = peaked(random_path(label, 12, rng), len(charset) + 1, rng, margin=5.0)
    res = lex.decode(lp)
    assert lex.word(res.indices) == planted
    check_lexicon_decode(lex, lp)


@settings(max_examples=40, deadline=None, database=None)
@given(
    words=st.lists(st.text("ABOK", min_size=1, max_size=6), min_size=1, max_size=25),
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(1, 10),
    scale=st.floats(0.2, 6.0),
    beam_width=st.integers(1, 4),
)
def test_lexicon_decode_is_exhaustive_best(words, seed, n_frames, scale, beam_width):
    lex = Lexicon(words + ADVERSARIAL[:4], ABC)
    lp = random_log_probs(np.random.default_rng(seed), n_frames, 5, scale)
    check_lexicon_decode(lex, lp, beam_width=beam_width)
    check_lexicon_decode(lex, lp, beam_width=beam_width, exact=False)


def test_lexicon_exact_pass_beats_the_beam():
    # With a one-node beam the first pass often ends on a worse word; the exact pass must still find the best.
    rng = np.random.default_rng(8)
    beam_worse = 0
    for _ in range(60):
        words = ["".join(rng.choice(list("ABOK"), rng.integers(1, 6))) for _ in range(40)]
        lex = Lexicon(words, ABC)
        lp = random_log_probs(rng, int(rng.integers(3, 9)), 5, float(rng.uniform(0.5, 3)))
        check_lexicon_decode(lex, lp, beam_width=1)
        quick = lex.decode(lp, beam_width=1, exact=False)
        beam_worse += quick.log_prob < lex.decode(lp, beam_width=1).log_prob - 1e-6
    assert beam_worse >= 3  # the exact pass was needed in these cases


def test_lexicon_decode_noisy_planted_words_seeded():
    rng = np.random.default_rng(3)
    alphabet = "abcdefghij"
    words = sorted({"".join(rng.choice(list(alphabet), rng.integers(1, 7))) for _ in range(300)})
    lex = Lexicon(words, alphabet)
    hits = 0
    for _ in range(25):
        planted = words[rng.integers(len(words))]
        label = [alphabet.index(ch) + 1 for ch in planted]
        path = random_path(label, 14, rng)
        lp = peaked(path, len(alphabet) + 1, rng, margin=float(rng.uniform(1.0, 6.0)))
        check_lexicon_decode(lex, lp)
        hits += lex.word(lex.decode(lp).indices) == planted
    assert hits >= 15  # sanity: the decoder is not just exact but useful


def test_lexicon_returns_best_word_not_greedy_text():
    # Greedy reads "BOK" (a lexicon word), but "BO" has more probability in total:
    # the third frame is K 34%, blank 33%, O 33%, and both blank and O extend "BO".
    p = np.array([
        [0.025, 0.025, 0.9, 0.025, 0.025],  # B
        [0.025, 0.025, 0.025, 0.9, 0.025],  # O
        [0.33, 0.0, 0.0, 0.33, 0.34],  # K | blank | O
        [0.9, 0.025, 0.025, 0.025, 0.025],  # blank
    ])
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    assert greedy_decode(lp).indices == (2, 3, 4)
    assert ctc_sequence_log_prob(lp, [2, 3]) > ctc_sequence_log_prob(lp, [2, 3, 4])
    lex = Lexicon(["BOK", "BO", "KO"], ABC)
    assert lex.word(lex.decode(lp).indices) == "BO"
    # And when greedy's word is the best lexicon word, it is the answer.
    lex2 = Lexicon(["BOK", "BOKK", "KO", "BOBO"], ABC)
    assert lex2.word(lex2.decode(lp).indices) == "BOK"


def test_lexicon_always_returns_a_member():
    rng = np.random.default_rng(4)
    lex = Lexicon(["ABBA", "KOOK", "BOOKKA"], ABC)
    for n_frames in (0, 1, 2, 3, 8):
        res = lex.decode(random_log_probs(rng, n_frames, 5))
        assert lex.word(res.indices) in lex.words
    # Too few frames for any word: still a member, with probability 0.
    res = lex.decode(random_log_probs(rng, 2, 5))
    assert lex.word(res.indices) in lex.words and res.log_prob == -np.inf and res.confidence == 0.0
    # With a node budget the search may stop early but still answers with a member.
    words = ["".join(rng.choice(list("ABOK"), rng.integers(1, 8))) for _ in range(500)]
    big = Lexicon(words, ABC)
    res = big.decode(random_log_probs(rng, 12, 5, scale=0.3), max_nodes=10)
    assert big.word(res.indices) in big.words


def test_lexicon_blank_not_zero():
    rng = np.random.default_rng(5)
    lp = random_log_probs(rng, 7, 5)
    lex = Lexicon(ADVERSARIAL[:8], {"B": 1, "O": 2, "K": 3, "S": 4})  # blank is class 0
    moved = np.concatenate([lp[:, 1:], lp[:, :1]], axis=1)  # the same distribution, blank last
    lex_moved = Lexicon(ADVERSARIAL[:8], {"B": 0, "O": 1, "K": 2, "S": 3})
    a, b = lex.decode(lp), lex_moved.decode(moved, blank=4)
    assert lex.word(a.indices) == lex_moved.word(b.indices)
    assert a.log_prob == pytest.approx(b.log_prob, abs=1e-9)
    with pytest.raises(ValueError):
        lex_moved.decode(moved)  # class 0 is both a letter and the blank
    with pytest.raises(ValueError):
        lex.decode(lp[:, :3])  # the lexicon uses classes the matrix does not have


def test_lexicon_frames_follow_the_alignment():
    rng = np.random.default_rng(6)
    path = random_path([2, 3, 3, 4], 12, rng)
    lp = peaked(path, 5, rng)
    res = Lexicon(["BOOK"], ABC).decode(lp)
    assert res.indices == (2, 3, 3, 4)
    assert res.frames == greedy_decode(lp).frames
    # A word that is not the greedy text is placed by its best alignment.
    res2 = Lexicon(["BOK"], ABC).decode(lp)
    assert res2.frames == ctc_align(lp, [2, 3, 4])[0]
    assert len(res2.frames) == 3 and list(res2.frames) == sorted(res2.frames)


def test_lexicon_cjk_charset():
    chars = "東京大阪都府市"
    lex = Lexicon(["東京", "大阪", "京都", "東京都", "大阪府", "大阪市", "京都市"], chars)
    rng = np.random.default_rng(9)
    for word in lex.words:
        label = [chars.index(ch) + 1 for ch in word]
        lp = peaked(random_path(label, 9, rng), len(chars) + 1, rng, margin=4.0)
        assert lex.word(lex.decode(lp).indices) == word
        check_lexicon_decode(lex, lp)


def test_out_of_charset_words_are_dropped_and_counted(tmp_path):
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    lines = ["\ufeffcafe", "", "café", decomposed, "  thé  ", "tea", "TEA", "naïve", "", "tea"]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lex = Lexicon.from_file(path, "acefthé")
    assert lex.words == ("cafe", "café", "thé", "tea")
    assert lex.num_dropped == 2 and set(lex.dropped_words) == {"TEA", "naïve"}
    assert decomposed in lex and "café" in lex and "TEA" not in lex and "coffee" not in lex
    assert len(lex) == 4
    # Mapping, string and Charset-like objects are the same charset.
    clean = ["cafe"] + lines[1:]
    as_map = Lexicon(clean, {ch: i + 1 for i, ch in enumerate("acefthé")})
    assert as_map.words == lex.words and as_map.sequences == lex.sequences

    class FakeCharset:
        chars = "acefthé"

    assert Lexicon(clean, FakeCharset()).sequences == lex.sequences
    with pytest.raises(ValueError):
        Lexicon(["xyz"], "abc").decode(random_log_probs(np.random.default_rng(0), 3, 4))


def test_unreadable_word_lists_are_one_clear_error(tmp_path):
    from crnn.errors import DataError

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt: not UTF-8 text at byte 3"):
        Lexicon.from_file(latin1, "acef")
    with pytest.raises(DataError, match=r"missing.txt: cannot read the word list"):
        Lexicon.from_file(tmp_path / "missing.txt", "acef")


def test_empty_lexicon_is_one_line(model_file, images, tmp_path, capsys):
    empty = tmp_path / "words.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["predict", str(model_file), str(images), "--lexicon", str(empty)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(empty) in err and "no word" in err
    unusable = tmp_path / "other.txt"
    unusable.write_text("hello\nworld\n", encoding="utf-8")  # no word fits the charset -7ABx
    assert main(["eval", str(model_file), str(images), "--lexicon", str(unusable)]) == 2
    assert "all 2 words have characters the model cannot output" in one_error_line(capsys.readouterr().err)
