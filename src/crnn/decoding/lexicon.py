"""Lexicon-constrained CTC decoding: the lexicon word with the highest CTC probability.

Approach: an exact branch-and-bound search over a prefix trie of the lexicon,
level by level, vectorised in NumPy over all live trie nodes of a level.

For a trie node (prefix ``p``) we carry the CTC forward variables of ``p`` over
time, split into paths ending in a blank and in ``p``'s last character. A
child's variables follow from its parent's in closed form (the recursions are
linear, so ``np.logaddexp.accumulate`` over time solves them with no Python loop
over frames). From the parent's variables we also get each child's *prefix
probability* -- the total probability of every label sequence that starts with
the child's prefix (Graves' prefix search), one matrix product for all children
of a level. It bounds from above the score of every word below the node, so

1. a first lower bound on the answer is the exact score of the greedy reading
   if it is a lexicon word, else that of the best word of a narrow beam pass
   (top ``beam_width`` nodes per level);
2. the exact pass then expands only the nodes whose prefix probability is not
   below the best word score found so far: an admissible branch and bound.

Trade-off, exact vs approximate. The result is exact: the word maximising
:func:`~crnn.decoding.beam.ctc_sequence_log_prob` (up to float rounding; ties go
to either word), the same answer as scoring every word. Only the running time
depends on the input. On a peaked model output the prefix bound collapses after
a character or two and a 50,000-word lexicon decodes in about 2 ms (roughly 450
images/s on one core, T=24, C=63: ``benchmarks/lexicon_decode.py``). On a flat
output (an unreadable image) the bound prunes little, the exact pass visits much
of the trie and takes about as long as exhaustive scoring (about a second for
50,000 words). ``exact=False`` skips the exact pass (about 1 ms, and a few ms on
flat outputs): still always a lexicon word, but only the greedy reading or the
beam's best; ``max_nodes`` caps the exact pass instead.

Why not a package: ``flashlight-text``'s ``LexiconDecoder`` decodes *sequences*
of words with word-boundary (silence) handling meant for speech: for a
single-word line it returned several concatenated words, or with a strongly
negative word score no word at all, and it is a beam search (approximate).
``pyctcdecode`` restricts to a vocabulary only through a KenLM language model
(a soft preference, and a compiled extension plus an n-gram model to build),
and ``fast-ctc-decode`` has no lexicon support. All three accept arbitrary
string tokens (digits, symbols, CJK), so the charset was not the problem. This
module needs nothing beyond NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from crnn.charset import BLANK, Charset, normalize
from crnn.decoding.beam import _prepare, ctc_align, ctc_sequence_log_prob
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.types import DecodeResult
from crnn.decoding.wordfile import read_word_file
from crnn.errors import DataError

_NEG = -np.inf
_TOL = 1e-7  # slack on the bound test, far above float rounding of the scores


class Lexicon:
    """A set of words over a charset, with exact lexicon-constrained CTC decoding.

    ``char_to_index`` maps each character to its class index (``1..C-1``; 0 is
    the CTC blank by default). A sequence of characters (e.g. ``charset.chars``)
    or a :class:`~crnn.charset.Charset` is accepted too and means
    ``{chars[i]: i + 1}``. Words are NFC-normalised and stripped; empty ones are
    ignored, duplicates kept once, and words with a character outside the
    charset are dropped and counted (:attr:`dropped_words`, :attr:`num_dropped`).
    :attr:`words` and :attr:`sequences` (their class indices) are parallel.
    """

    def __init__(self, words: Iterable[str], char_to_index: Mapping[str, int] | Sequence[str] | Any) -> None:
        if not isinstance(char_to_index, Mapping):  # a Charset (or anything with .chars), or its characters
            char_to_index = Charset(getattr(char_to_index, "chars", char_to_index)).mapping
        self.char_to_index: dict[str, int] = dict(char_to_index)
        kept: list[str] = []
        seqs: list[tuple[int, ...]] = []
        dropped: list[str] = []
        seen: set[tuple[int, ...]] = set()
        for raw in words:
            word = normalize(raw.strip())
            if not word:
                continue
            try:
                seq = tuple(self.char_to_index[ch] for ch in word)
            except KeyError:
                dropped.append(word)
                continue
            if seq not in seen:
                seen.add(seq)
                kept.append(word)
                seqs.append(seq)
        self.words: tuple[str, ...] = tuple(kept)
        self.sequences: tuple[tuple[int, ...], ...] = tuple(seqs)
        self.dropped_words: tuple[str, ...] = tuple(dropped)
        self._index = {s: i for i, s in enumerate(seqs)}
        self._build_trie()

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, char_to_index: Mapping[str, int] | Sequence[str] | Any
    ) -> Lexicon:
        """One word per line, UTF-8 (a BOM is allowed); blank lines are ignored."""
        text = read_word_file(path, "a word list must be UTF-8, one word per line")
        lex = cls(text.splitlines(), char_to_index)
        if not lex.words:  # found now, not as a ValueError at the first image
            why = (f"all {lex.num_dropped} words have characters the model cannot output" if lex.num_dropped
                   else "it holds no word")
            raise DataError(f"{path}: the word list is unusable: {why} (one word per line, UTF-8)")
        return lex

    @property
    def num_dropped(self) -> int:
        """How many words were dropped for having characters outside the charset."""
        return len(self.dropped_words)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.word_index(word) is not None

    def word_index(self, word: str) -> int | None:
        """Position of ``word`` in :attr:`words`, or ``None``."""
        try:
            seq = tuple(self.char_to_index[ch] for ch in normalize(word))
        except KeyError:
            return None
        return self._index.get(seq)

    def word(self, indices: Sequence[int]) -> str:
        """The lexicon word spelled by ``indices`` (e.g. a :meth:`decode` result's)."""
        return self.words[self._index[tuple(indices)]]

    def _build_trie(self) -> None:
        children: list[dict[int, int]] = [{}]
        chars, word_of = [-1], [-1]
        for wid, seq in enumerate(self.sequences):
            node = 0
            for c in seq:
                nxt = children[node].get(c)
                if nxt is None:
                    nxt = len(children)
                    children[node][c] = nxt
                    children.append({})
                    chars.append(c)
                    word_of.append(-1)
                node = nxt
            word_of[node] = wid
        # Renumber breadth-first so that the children of every node are contiguous.
        order = [0]
        start = np.zeros(len(children), dtype=np.int64)
        count = np.zeros(len(children), dtype=np.int64)
        for new, old in enumerate(order):
            start[new] = len(order)
            count[new] = len(children[old])
            order.extend(children[old][c] for c in sorted(children[old]))
        order_arr = np.array(order, dtype=np.int64)
        self._child_start, self._child_count = start, count
        self._char = np.array(chars, dtype=np.int64)[order_arr]
        self._word = np.array(word_of, dtype=np.int64)[order_arr]
        used = self._char[1:]
        self._max_index = int(used.max()) if len(used) else 0
        self._used = set(np.unique(used).tolist())

    def decode(
        self,
        log_probs: np.ndarray,
        blank: int = BLANK,
        beam_width: int = 8,
        exact: bool = True,
        max_nodes: int | None = None,
    ) -> DecodeResult:
        """The lexicon word with the highest CTC probability under ``log_probs`` (``(T, C)``).

        ``log_prob`` is that word's total CTC log-probability; ``frames`` come from
        its best alignment. The greedy reading, if it is a lexicon word, or else the
        best word of a beam pass (``beam_width`` nodes per trie level) gives a
        lower bound for the exact pass; ``exact=False`` returns that word instead.
        ``max_nodes`` caps the trie nodes the exact pass may score (a safety valve
        for flat, unreadable outputs); when it is hit the result is the best word
        found so far, no longer guaranteed optimal. ``None``: no cap (exact).
        """
        if not self.words:
            raise ValueError("the lexicon is empty")
        lp = _prepare(log_probs)
        n_frames, n_classes = lp.shape
        if self._max_index >= n_classes or blank in self._used or not 0 <= blank < n_classes:
            raise ValueError(f"lexicon indices (max {self._max_index}) or blank {blank} do not fit {n_classes} classes")
        greedy = greedy_decode(lp, blank)
        word = self._index.get(greedy.indices, -1)
        if word >= 0:  # a first lower bound for free, and the answer with exact=False
            score = ctc_sequence_log_prob(lp, greedy.indices, blank)
        else:
            score, word = self._search(lp, blank, _NEG, beam_width) if n_frames else (_NEG, -1)
        if (exact or word < 0) and n_frames:  # the beam can also end on prefixes with no word that fits
            score2, word2 = self._search(lp, blank, score, None, max_nodes)
            if word2 >= 0:
                score, word = score2, word2
        if word < 0:  # no word fits in T frames: all score -inf
            return DecodeResult(min(self.sequences, key=len), float(_NEG), ())
        seq = self.sequences[word]
        frames = greedy.frames if seq == greedy.indices else ctc_align(lp, seq, blank)[0]
        return DecodeResult(seq, float(score), frames)

    def decode_batch(
        self, log_probs: np.ndarray, lengths: np.ndarray | None = None, blank: int = BLANK, **kwargs
    ) -> list[DecodeResult]:
        """Decode a ``(B, T, C)`` batch; ``lengths`` gives each sample's valid frames."""
        out = []
        for b in range(log_probs.shape[0]):
            t = log_probs.shape[1] if lengths is None else int(lengths[b])
            out.append(self.decode(log_probs[b, :t], blank, **kwargs))
        return out

    def _search(
        self, lp: np.ndarray, blank: int, lower: float, beam: int | None, max_nodes: int | None = None
    ) -> tuple[float, int]:
        """Level-wise trie search: (best word score, its index) if a word scores above ``lower``, else (lower, -1).

        State arrays have ``T + 1`` columns, column ``j`` being "after frame ``j - 1``"
        (column 0: before the first frame). ``s_blank``/``s_char`` are cumulative
        sums of log-probabilities over frames, so that a run of one class from
        column ``i`` to ``j`` has log-probability ``s[j] - s[i]``.
        """
        n_frames = lp.shape[0]
        lpt = lp.T  # (C, T)
        probs = np.exp(lp)  # (T, C)
        s_char = np.zeros((lp.shape[1], n_frames + 1))
        np.cumsum(lpt, axis=1, out=s_char[:, 1:])
        s_blank = s_char[blank]
        ids = np.zeros(1, dtype=np.int64)
        end_b = s_blank[None, :].copy()  # the empty prefix: all blanks so far
        end_c = np.full((1, n_frames + 1), _NEG)
        best, best_word = lower, -1
        visited = 0
        while len(ids) and (max_nodes is None or visited < max_nodes):
            counts = self._child_count[ids]
            total = int(counts.sum())
            if total == 0:
                break
            visited += total
            rows = np.repeat(np.arange(len(ids)), counts)
            offsets = np.repeat(np.cumsum(counts) - counts, counts)
            kids = np.arange(total) - offsets + np.repeat(self._child_start[ids], counts)
            c = self._char[kids]
            # Prefix probability of each child: sum over frames t of P(parent's paths before t) * y_t(c).
            # One matrix product gives it for every (parent, class); a child repeating its parent's last
            # character can only follow blank-ending paths, and is redone below in log space.
            tot = np.logaddexp(end_b[:, :n_frames], end_c[:, :n_frames])
            top = tot.max(axis=1, keepdims=True)
            top[~np.isfinite(top)] = 0.0
            with np.errstate(divide="ignore"):
                lin = (np.exp(tot - top) @ probs)[rows, c]
                bound = np.log(lin) + top[rows, 0]
            same = self._char[ids][rows] == c
            redo = np.nonzero(same | (lin < 1e-280))[0]  # also where the product may have underflowed
            if len(redo):
                src = np.where(same[redo, None], end_b[rows[redo], :n_frames], tot[rows[redo]])
                bound[redo] = np.logaddexp.reduce(src + lpt[c[redo]], axis=1)
            keep = np.nonzero((bound >= best - _TOL) & (bound > _NEG))[0]
            if beam is not None and len(keep) > beam:
                keep = keep[np.argpartition(-bound[keep], beam - 1)[:beam]]
            if not len(keep):
                break
            kids, c, rows, bound = kids[keep], c[keep], rows[keep], bound[keep]
            prev = np.where(same[keep, None], end_b[rows, :n_frames], tot[rows])
            sc = s_char[c]
            end_c = np.empty((len(kids), n_frames + 1))
            end_c[:, 0] = _NEG
            end_c[:, 1:] = sc[:, 1:] + np.logaddexp.accumulate(prev - sc[:, :n_frames], axis=1)
            end_b = np.empty_like(end_c)
            end_b[:, 0] = _NEG
            end_b[:, 1:] = s_blank[1:] + np.logaddexp.accumulate(end_c[:, :n_frames] - s_blank[:n_frames], axis=1)
            words = np.nonzero(self._word[kids] >= 0)[0]
            if len(words):
                scores = np.logaddexp(end_b[words, n_frames], end_c[words, n_frames])
                k = int(scores.argmax())
                if scores[k] > best:
                    best, best_word = float(scores[k]), int(self._word[kids[words[k]]])
                    alive = bound >= best - _TOL
                    kids, end_b, end_c = kids[alive], end_b[alive], end_c[alive]
            ids = kids
        return best, best_word
