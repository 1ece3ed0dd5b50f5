"""Drawing the texts of a :class:`~crnn.synth.config.SynthConfig`: words, phrases, lines or regex strings.

Here, not in :mod:`crnn.synth.text`, because it reads the config while the config reads the text
module's spec parser: the text primitives stay below both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crnn.errors import ConfigError
from crnn.synth.config import SynthConfig
from crnn.synth.text import _JOINERS, _SUFFIXES, _WRAPS, RegexGenerator, default_words, parse_text_spec, read_items


class TextSampler:
    """Draws candidate texts for a :class:`SynthConfig` (charset and fonts are checked later).

    ``cfg.text``:

    * ``"words"``: 1-3 word phrases from wordfreq's list for ``cfg.language``;
    * ``"words:FILE"``: the same, from your word list (one word per line);
    * ``"lines:FILE"`` (or ``"file:FILE"``, or a path to an existing file): whole lines, as they are;
    * ``"regex:PATTERN"``: strings matching ``PATTERN``.

    Phrases get a case (as listed / Capitalised / UPPER, by ``cfg.case_mix``), sometimes
    punctuation (``word,``, ``(word)``, ``well-known``) and sometimes a number-like token
    from ``cfg.patterns`` (``$12.50``, ``3:45``).
    """

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        self.mode, self.arg = parse_text_spec(cfg.text)
        cs = set(cfg.charset) if cfg.charset else None
        self.words: tuple[str, ...] = ()
        self.items: tuple[str, ...] = ()
        self.regex: RegexGenerator | None = None
        self.patterns = tuple(RegexGenerator(p, charset=cfg.charset) for p in cfg.patterns)
        if self.mode == "words":
            words = default_words(cfg.language, cfg.vocab_size) if self.arg is None else read_items(self.arg)
            if self.arg is not None:
                words = tuple(w for item in words for w in item.split(" "))
            if cs is not None:
                words = tuple(w for w in words if any(set(v) <= cs for v in (w, _cap(w), w.upper())))
            if not words and not (self.patterns and cfg.pattern_prob > 0):
                raise ConfigError(f"text {cfg.text!r}: no word fits the charset {cfg.charset!r}")
            self.words = words
        elif self.mode == "lines":
            items = read_items(self.arg)
            if cs is not None:
                items = tuple(s for s in items if set(s) <= cs)
                if not items:
                    raise ConfigError(f"{self.arg}: no line fits the charset {cfg.charset!r}")
            self.items = items
        else:
            self.regex = RegexGenerator(self.arg or "", charset=cfg.charset)

    def _token(self, rng: np.random.Generator) -> tuple[str, bool]:
        """A word (True) or a pattern token (False)."""
        cfg = self.cfg
        if self.patterns and (not self.words or rng.random() < cfg.pattern_prob):
            return self.patterns[int(rng.integers(len(self.patterns)))](rng), False
        return self.words[int(rng.integers(len(self.words)))], True

    def _phrase(self, rng: np.random.Generator) -> str:
        cfg = self.cfg
        n = int(rng.integers(cfg.min_words, cfg.max_words + 1))
        tokens = [self._token(rng) for _ in range(n)]
        case = int(rng.choice(3, p=_normalised(cfg.case_mix)))
        words: list[str] = []
        for k, (tok, is_word) in enumerate(tokens):
            if is_word:
                if case == 1 and (k == 0 or rng.random() < 0.5):
                    tok = _cap(tok)
                elif case == 2:
                    tok = tok.upper()
            words.append(tok)
        out: list[str] = []
        k = 0
        while k < len(words):
            w = words[k]
            if cfg.punct_prob > 0 and rng.random() < cfg.punct_prob:
                kind = rng.random()
                if kind < 0.55:
                    w = w + _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
                elif kind < 0.85:
                    a, b = _WRAPS[int(rng.integers(len(_WRAPS)))]
                    w = a + w + b
                elif k + 1 < len(words):
                    w = w + _JOINERS[int(rng.integers(len(_JOINERS)))] + words[k + 1]
                    k += 1
                else:
                    w = w + _SUFFIXES[int(rng.integers(len(_SUFFIXES)))]
            out.append(w)
            k += 1
        return " ".join(out)

    def __call__(self, rng: np.random.Generator) -> str:
        if self.mode == "words":
            return self._phrase(rng)
        if self.mode == "lines":
            return self.items[int(rng.integers(len(self.items)))]
        assert self.regex is not None
        return self.regex(rng)


def _cap(w: str) -> str:
    return w[:1].upper() + w[1:]


def _normalised(p: Sequence[float]) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    return a / a.sum()
