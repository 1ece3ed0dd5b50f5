"""A character n-gram language model over words, and its fusion with CTC beam search.

Why: a small CRNN confuses look-alike glyphs (``i``/``l``/``t``, ``rn``/``m``, ``c``/``e``) that context settles:
"tbe" is not English, "the" is. A lexicon forces every reading into a word list, which is wrong for numbers,
names and codes; a language model only *prefers* likely spellings. Shallow fusion adds ``weight * log p_lm(c)``
and a per-character ``bonus`` to each beam extension (:func:`crnn.decoding.beam.beam_search`), so a confident
image still wins over the model's taste. With the defaults it lifts ``builtin:en`` from 69.5 to 74.2 % exact on
the synthetic stage 5 validation set (with that set's words taken out of the LM, so it measures words the LM
never saw) and from 87.7 to 91.0 % of the clean long check lines, at a cost of 0.1 point on a dev set of clean
printed words it never saw (BENCHMARKS.md, "A language model in the beam").

What it models: the letters of words, case-folded (a capital scores as its lower-case letter, so the LM never
argues with case), with a word-start context and an end-of-word symbol. Digits, punctuation and the space are
outside it: after letters a space scores the word's end, and a digit or symbol the word's end and a fixed
``other`` probability; outside a word every non-letter costs ``other``, so ``2024-10-09`` or ``#A7`` pass at a
small, constant cost. An apostrophe scores as a letter (``don't``) or a quotation mark, whichever the LM finds
likelier. Contexts never cross a word boundary: the model is built from word counts (wordfreq's frequencies or a
user's list), not running text.

Smoothing: interpolated Dirichlet (MacKay-Peto) backoff, ``p(c|h) = (n(h,c) + prior * p(c|h')) / (n(h) + prior)``
with ``h'`` the context one character shorter, down to an add-one unigram. It works with the fractional counts
that word frequencies give, which Kneser-Ney's count-of-counts do not.

Why not a package: ``pyctcdecode`` and the flashlight decoder (``flashlight-text``, ``torchaudio``) fuse a
*KenLM* model, which needs the compiled ``kenlm`` extension and an n-gram file built by its ``lmplz`` tool;
neither ships here. pyctcdecode scores whole words, and a partial word only by whether it starts a known one,
which for a cropped word not in the list (a name, a rare word) is the lexicon's problem again. Flashlight's
lexicon-free decoder takes a character KenLM, but through torchaudio it is tied to torch's build, and a word
list would still have to become an ARPA file first. This module needs NumPy (and wordfreq, the synth extra, for
the built-in English model).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Mapping

import numpy as np

from crnn.charset import Charset, normalize
from crnn.decoding.wordfile import read_word_file
from crnn.errors import ConfigError, DataError

START = "^"
"""Marks the start of a word in a context (not a letter of any word)."""

DEFAULT_WEIGHT = 0.15
DEFAULT_BONUS = 0.5
"""Chosen on synthetic dev sets, never on a real test set (BENCHMARKS.md): the most words read on the stage 5
validation set with its words removed from the LM, among the settings that cost at most 0.2 points on clean
printed words the LM never saw (rendered in training fonts, so the benchmark's held-out fonts stay unused)."""

LM_BEAM = 10
"""The beam width a language model decodes with when none is given (``beam`` 0 or 1)."""
LM_PRUNE = -8.0
"""With a language model, classes below this log-probability in a frame do not extend the beam: to win, the
LM (a few nats per character at its default weight) would have to outweigh odds of e^8 against them in the
image. On the dev sets the texts were identical to those at the plain beam's -16, at 1.4x (words) to 2x
(lines) the speed (BENCHMARKS.md); about 40 % of the frames then hold only the blank and skip the search."""


def lm_beam_width(beam: int) -> int:
    """The beam width a language model decodes with: ``beam`` when it is a beam (> 1), else :data:`LM_BEAM`."""
    return beam if beam and beam > 1 else LM_BEAM


def _word(w: str) -> str | None:
    """A word as the LM counts it (case-folded, ’ as '), or None if it has anything but letters and '."""
    w = normalize(w).strip().lower().replace("\u2019", "'")
    return w if w.replace("'", "").isalpha() else None


class CharLM:
    """A character n-gram model of words: ``log p(next letter or end of word | the word so far)``.

    Build it with :meth:`from_counts` (``{word: count}``), :meth:`from_file` (a word list or any text) or
    :meth:`builtin` (wordfreq's most frequent words of a language); :func:`load_lm` picks one from a CLI value.
    """

    def __init__(self, counts: Mapping[str, float], order: int = 6, prior: float = 3.0, name: str = "words"):
        if order < 2:
            raise ConfigError(f"a character LM needs order >= 2, got {order}")
        words: dict[str, float] = {}
        for w, n in counts.items():
            key = _word(w)
            if key is not None and n > 0:
                words[key] = words.get(key, 0.0) + float(n)
        if not words:
            raise DataError(f"{name}: no word to build a language model from (words of letters only)")
        self.name = name
        self.order = order
        self.prior = prior
        self.symbols = "".join(sorted({ch for w in words for ch in w}))
        """The letters the model knows; index ``len(symbols)`` is the end of a word."""
        self._sym = {ch: i for i, ch in enumerate(self.symbols)}
        eow = len(self.symbols)
        # Count each n-gram (its context and the next symbol, "$" for the word's end) as one string: a dict of
        # strings is several times faster to fill than NumPy rows, and the rows are built once at the end.
        grams: dict[str, float] = {}
        for w, n in words.items():
            s = START + w + "$"
            for i in range(1, len(s)):
                for k in range(min(order, i + 1)):
                    g = s[i - k:i + 1]
                    grams[g] = grams.get(g, 0.0) + n
        index = dict(self._sym, **{"$": eow})
        rows: dict[str, int] = {}
        at = np.empty(len(grams), dtype=np.int64)
        col = np.empty(len(grams), dtype=np.int64)
        for j, g in enumerate(grams):
            at[j] = rows.setdefault(g[:-1], len(rows))
            col[j] = index[g[-1]]
        table = np.zeros((len(rows), eow + 1))
        table[at, col] = np.fromiter(grams.values(), dtype=np.float64, count=len(grams))
        self._rows = rows
        self._table = table
        self.num_words = len(words)
        self._probs = functools.lru_cache(maxsize=200_000)(self._compute)

    @classmethod
    def from_counts(cls, counts: Mapping[str, float] | Iterable[str], **kw) -> CharLM:
        if not isinstance(counts, Mapping):
            tally: dict[str, float] = {}
            for w in counts:
                tally[w] = tally.get(w, 0.0) + 1.0
            counts = tally
        return cls(counts, **kw)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kw) -> CharLM:
        """UTF-8 text: ``word<TAB>count`` lines, or plain words or sentences (each word counts once per line)."""
        counts: dict[str, float] = {}
        text = read_word_file(path, "a language model's word list must be UTF-8")
        for n, line in enumerate(text.splitlines(), start=1):
            parts = line.split("\t")
            if len(parts) == 2 and parts[1].strip():
                try:
                    count = float(parts[1])
                except ValueError:
                    raise DataError(f"{path}:{n}: the count {parts[1]!r} is not a number "
                                    "(lines are 'word<TAB>count' or plain text)") from None
                counts[parts[0]] = counts.get(parts[0], 0.0) + count
                continue
            for w in line.split():
                w = w.strip(".,;:!?\"()[]{}")
                counts[w] = counts.get(w, 0.0) + 1.0
        return cls(counts, name=str(path), **kw)

    @classmethod
    @functools.lru_cache(maxsize=4)
    def builtin(cls, language: str = "en", size: int = 100_000) -> CharLM:
        """wordfreq's ``size`` most frequent words of ``language``, weighted by their frequency (the data ships
        in the wheel; about 7 s to build the English model on one core, once per process)."""
        try:
            from wordfreq import available_languages, get_frequency_dict, top_n_list
        except ImportError:
            raise ConfigError("the built-in language model needs the 'wordfreq' package (pip install "
                              "'crnn-ocr[synth]'), or give a word list file") from None
        if language not in available_languages():
            raise ConfigError(f"wordfreq has no word list for language {language!r}; give a word list file")
        freq = get_frequency_dict(language)
        counts = {w: freq[w] * 1e7 for w in top_n_list(language, size)}
        return cls(counts, name=f"wordfreq:{language}")

    def _compute(self, ctx: str) -> np.ndarray:
        """``p(symbol | ctx)``, backed off to the context one character shorter (cached)."""
        if ctx == "":
            counts = self._table[self._rows[""]]
            return (counts + 1.0) / (counts.sum() + len(counts))
        lower = self._probs(ctx[1:])
        row = self._rows.get(ctx)
        if row is None:
            return lower
        found = self._table[row]
        return (found + self.prior * lower) / (found.sum() + self.prior)

    def log_probs(self, word_so_far: str) -> np.ndarray:
        """``log p`` of each of :attr:`symbols` and then of the word's end, after ``word_so_far`` (case-folded
        letters; empty at a word start)."""
        ctx = (START + word_so_far)[-(self.order - 1):]
        return np.log(self._probs(ctx))

    def word_log_prob(self, word: str) -> float:
        """The log-probability of a whole word (its letters and its end); ``-inf`` for a letter it never saw."""
        w = _word(word)
        if w is None or any(ch not in self._sym for ch in w):
            return -math.inf
        total = 0.0
        for i, ch in enumerate(w):
            total += float(self.log_probs(w[:i])[self._sym[ch]])
        return total + float(self.log_probs(w)[-1])


class LMScorer:
    """A :class:`CharLM` bound to a model's charset: what :func:`~crnn.decoding.beam.beam_search` adds per
    extension, ``weight * log p_lm + bonus``. The state is the current word's letters (case-folded)."""

    def __init__(self, lm: CharLM, charset: Charset, weight: float | None = None, bonus: float | None = None,
                 other: float = 0.1):
        weight = DEFAULT_WEIGHT if weight is None else weight
        bonus = DEFAULT_BONUS if bonus is None else bonus
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"lm weight must be a finite number >= 0, got {weight!r}")
        if not math.isfinite(bonus):
            raise ConfigError(f"lm bonus must be a finite number, got {bonus!r}")
        if not 0 < other <= 1:
            raise ConfigError(f"lm other-character probability must be in (0, 1], got {other!r}")
        self.lm, self.weight, self.bonus = lm, weight, bonus
        n = charset.num_classes
        # Per class: the LM symbol of a letter (-1: not a letter the LM knows), and its case-folded letter.
        self._sym = np.full(n, -1, dtype=np.int64)
        self._letter = [""] * n
        for i, ch in enumerate(charset.chars, start=1):
            lo = ch.lower().replace("\u2019", "'")
            if len(lo) == 1 and lo in lm._sym:
                self._sym[i] = lm._sym[lo]
                self._letter[i] = lo
        self._is_letter = self._sym >= 0
        self._is_space = np.array([False] + [ch == " " for ch in charset.chars])
        # An apostrophe is a letter inside "don't" and a quotation mark after "said'": it scores as whichever
        # the LM finds likelier, and only the letter reading continues the word.
        self._quote = self._is_letter & np.array([False] + [lt == "'" for lt in self._letter[1:]])
        self._log_other = math.log(other)
        self._cache: dict[str, np.ndarray] = {}

    def vector(self, state: str) -> np.ndarray:
        """The score of extending a prefix in ``state`` by each class (index 0, the blank, scores 0)."""
        v = self._cache.get(state)
        if v is None:
            lp = self.lm.log_probs(state)
            letters = lp[np.maximum(self._sym, 0)]
            # After letters, a space is the word's end and any other non-letter ends it and costs `other`;
            # outside a word (at the start, after a space, digit or symbol) every non-letter costs `other`.
            if state:
                end = lp[-1]
                mark = np.where(self._is_space, end, end + self._log_other)
            else:
                mark = np.full(len(letters), self._log_other)
            v = np.where(self._quote, np.maximum(letters, mark), np.where(self._is_letter, letters, mark))
            v = self.weight * v + self.bonus
            v[0] = 0.0
            if len(self._cache) < 100_000:
                self._cache[state] = v
        return v

    def next_state(self, state: str, index: int) -> str:
        letter = self._letter[index]
        if not letter:
            return ""
        if self._quote[index]:
            lp = self.lm.log_probs(state)
            mark = (lp[-1] + self._log_other) if state else self._log_other
            if lp[self._sym[index]] < mark:  # read as a quotation mark: the word has ended
                return ""
        s = state + letter
        return s[-(self.lm.order - 1):]

    def final(self, state: str) -> float:
        """The score of the word in progress ending with the line."""
        return self.weight * float(self.lm.log_probs(state)[-1]) if state else 0.0

    def score(self, indices: Iterable[int]) -> float:
        """The total LM score of a whole class sequence (what the beam adds up along it, plus :meth:`final`)."""
        state, total = "", 0.0
        for i in indices:
            total += float(self.vector(state)[i])
            state = self.next_state(state, i)
        return total + self.final(state)


def load_lm(spec: str | os.PathLike | CharLM) -> CharLM:
    """A CLI or API value: a :class:`CharLM`, ``en`` (or ``wordfreq:LANG``) for wordfreq's words, or a file."""
    if isinstance(spec, CharLM):
        return spec
    text = os.fspath(spec)
    if text.startswith("wordfreq:"):
        return CharLM.builtin(text.split(":", 1)[1])
    if not os.path.exists(text) and len(text) <= 3 and text.isalpha():
        return CharLM.builtin(text)
    if not os.path.isfile(text):
        raise DataError(f"{text}: no such word list (give a file, or 'en' for the built-in English model)")
    return CharLM.from_file(text)
