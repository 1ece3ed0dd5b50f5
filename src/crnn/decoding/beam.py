"""CTC prefix beam search and exact sequence scoring, in NumPy (log space).

* :func:`beam_search` keeps, per prefix, the log-probability of the paths that
  collapse to it and end in a blank (``p_b``) or in its last character
  (``p_nb``); each time step is one vectorised pass over ``beam × classes``.
  It is approximate (prefixes that fall out of the beam lose their mass), so it
  rescores its best prefix and the greedy sequence exactly and returns the
  better: never a sequence less probable than greedy's. Given a language model
  (:mod:`crnn.decoding.charlm`), it ranks prefixes by the CTC score plus the LM's
  (shallow fusion) and compares with greedy on that sum.
* :func:`ctc_sequence_log_prob` is the exact CTC forward algorithm.
* :func:`ctc_align` is the best single alignment (Viterbi) of a given sequence,
  used to place characters of a sequence that is not the greedy one.

Log-probabilities below ``-1e4`` (``-inf`` included) are raised to ``-1e4`` so
that the arithmetic stays finite (a sequence is ``-inf`` only when it cannot fit
in ``T`` frames); the probabilities that changes are ``< e^-10000``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from crnn.charset import BLANK
from crnn.decoding.greedy import greedy_decode
from crnn.decoding.types import DecodeResult

LOG_FLOOR = -1e4
_NEG = -np.inf


def _prepare(log_probs: np.ndarray) -> np.ndarray:
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"expected a (T, C) matrix, got shape {lp.shape}")
    return np.maximum(lp, LOG_FLOOR)


def _extended(indices: Sequence[int], blank: int) -> tuple[np.ndarray, np.ndarray]:
    """Blank-interleaved labels and the mask of states that may skip the blank before them."""
    ext = np.full(2 * len(indices) + 1, blank, dtype=np.int64)
    ext[1::2] = indices
    skip = np.zeros(len(ext), dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    if (ext[1::2] == blank).any():
        raise ValueError("a label sequence may not contain the blank")
    return ext, skip


def ctc_sequence_log_prob(log_probs: np.ndarray, indices: Sequence[int], blank: int = BLANK) -> float:
    """Exact ``log P(indices | log_probs)``: the CTC forward algorithm over all paths.

    Returns ``-inf`` when the sequence cannot fit in ``T`` frames.
    """
    lp = _prepare(log_probs)
    ext, skip = _extended(indices, blank)
    n_frames, n_states = lp.shape[0], len(ext)
    if n_frames == 0:
        return 0.0 if not len(indices) else float(_NEG)
    y = lp[:, ext]  # (T, S)
    alpha = np.full(n_states, _NEG)
    alpha[:2] = y[0, :2]
    for t in range(1, n_frames):
        prev = alpha.copy()
        prev[1:] = np.logaddexp(prev[1:], alpha[:-1])
        prev[2:] = np.where(skip[2:], np.logaddexp(prev[2:], alpha[:-2]), prev[2:])
        alpha = prev + y[t]
    total = np.logaddexp(alpha[-1], alpha[-2]) if n_states > 1 else alpha[-1]
    return float(total)


def ctc_align(log_probs: np.ndarray, indices: Sequence[int], blank: int = BLANK) -> tuple[tuple[int, ...], float]:
    """Best single path (Viterbi) that collapses to ``indices``.

    Returns ``(frames, log_prob)``: for each label the frame where that path
    first emits it, and the path's log-probability (``-inf`` if impossible).
    """
    lp = _prepare(log_probs)
    ext, skip = _extended(indices, blank)
    n_frames, n_states = lp.shape[0], len(ext)
    if not len(indices):
        return (), float(lp[:, blank].sum())
    if n_frames == 0:
        return (), float(_NEG)
    y = lp[:, ext]
    back = np.zeros((n_frames, n_states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    alpha = np.full(n_states, _NEG)
    alpha[:2] = y[0, :2]
    for t in range(1, n_frames):
        cand = np.full((3, n_states), _NEG)
        cand[0] = alpha
        cand[1, 1:] = alpha[:-1]
        cand[2, 2:] = np.where(skip[2:], alpha[:-2], _NEG)
        back[t] = cand.argmax(axis=0)
        alpha = cand[back[t], np.arange(n_states)] + y[t]
    s = n_states - 1 if alpha[-1] >= alpha[-2] else n_states - 2
    score = float(alpha[s])
    if score == _NEG:
        return (), score
    states = np.empty(n_frames, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    odd = states % 2 == 1
    first = odd.copy()
    first[1:] &= states[1:] != states[:-1]
    return tuple(int(t) for t in np.nonzero(first)[0]), score


class PrefixScorer(Protocol):
    """What the beam adds to a prefix's CTC score as it grows (a language model,
    :class:`crnn.decoding.charlm.LMScorer`): a score per class in each state, the next state, and the
    score of ending the line in a state."""

    def vector(self, state: str) -> np.ndarray: ...

    def next_state(self, state: str, index: int) -> str: ...

    def final(self, state: str) -> float: ...

    def score(self, indices: Sequence[int]) -> float: ...


def beam_search(
    log_probs: np.ndarray, beam_width: int = 10, blank: int = BLANK, prune: float | None = -16.0,
    lm: PrefixScorer | None = None,
) -> DecodeResult:
    """CTC prefix beam search (log space), optionally fused with a language model.

    ``prune``: per frame, classes whose log-probability is below it are not
    used to extend prefixes (the frame's best class always is); ``None`` keeps
    all. Returns the beam's most probable prefix with its exact total
    log-probability (the beam's own figure only counts the paths that stayed in
    the beam, so the prefix is rescored with the forward algorithm). If the greedy
    sequence scores higher, it is returned instead, so the result is never worse
    than greedy decoding. ``frames`` place each character where the best single
    path of the returned sequence starts it (for the greedy sequence, where greedy
    decoding does): unlike "the frame where the prefix first got the character",
    that is not thrown off by an early, improbable extension that survived in the
    beam.

    ``lm`` (shallow fusion): prefixes are ranked by their CTC score plus ``lm``'s
    score of their characters, and the greedy sequence is compared on the same sum;
    the returned ``log_prob`` (and so the confidence) stays the sequence's CTC
    probability, what the image says.
    """
    lp = _prepare(log_probs)
    n_frames, n_classes = lp.shape
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    if n_frames == 0:
        return DecodeResult((), 0.0, ())
    if not 0 <= blank < n_classes:
        raise ValueError(f"blank {blank} out of range for {n_classes} classes")
    # The beam: a list of prefixes (tuples) and arrays of their log p_b / p_nb.
    prefixes: list[tuple[int, ...]] = [()]
    pb = np.array([0.0])
    pnb = np.array([_NEG])
    states = [""]  # the LM state of each prefix (unused without an LM)
    lms = np.array([0.0])  # the LM score of each prefix
    all_classes = np.array([c for c in range(n_classes) if c != blank], dtype=np.int64)
    for t in range(n_frames):
        row = lp[t]
        if prune is None:
            cls = all_classes
        else:
            keep = row >= prune
            keep[int(row.argmax())] = True
            keep[blank] = False
            cls = np.nonzero(keep)[0]
        total = np.logaddexp(pb, pnb)
        last = np.array([p[-1] if p else -1 for p in prefixes])
        # Staying on the same prefix: end in a blank, or repeat the last character.
        stay_b = total + row[blank]
        stay_nb = pnb + np.where(last >= 0, row[np.maximum(last, 0)], _NEG)
        if len(cls) == 0:  # only the blank survives the pruning: every prefix stays, none grows
            pb, pnb = stay_b, stay_nb
            continue
        # Extending by a character c: from any path, or only from blank-ending ones if c repeats the last one.
        src = np.where(last[:, None] == cls[None, :], pb[:, None], total[:, None])
        ext = src + row[cls][None, :]  # (beam, k)
        lm_ext = np.stack([lm.vector(st)[cls] for st in states]) if lm is not None else None
        # An extension that is already a beam member adds its mass to that member.
        position = {p: i for i, p in enumerate(prefixes)}
        col = np.full(n_classes, -1)
        col[cls] = np.arange(len(cls))
        for i, p in enumerate(prefixes):
            if p and (j := col[p[-1]]) >= 0 and (src_i := position.get(p[:-1])) is not None:
                stay_nb[i] = np.logaddexp(stay_nb[i], ext[src_i, j])
                ext[src_i, j] = _NEG
        n_beam = len(prefixes)
        if lm_ext is None:
            scores = np.concatenate([np.logaddexp(stay_b, stay_nb), ext.ravel()])
        else:
            scores = np.concatenate([np.logaddexp(stay_b, stay_nb) + lms, (ext + lms[:, None] + lm_ext).ravel()])
        if len(scores) > beam_width:
            top = np.argpartition(-scores, beam_width - 1)[:beam_width]
        else:
            top = np.arange(len(scores))
        top = top[np.isfinite(scores[top])]
        new_prefixes, new_pb, new_pnb, new_states, new_lms = [], [], [], [], []
        for k in top:
            if k < n_beam:
                new_prefixes.append(prefixes[k])
                new_pb.append(stay_b[k])
                new_pnb.append(stay_nb[k])
                new_states.append(states[k])
                new_lms.append(lms[k])
            else:
                i, j = divmod(int(k) - n_beam, len(cls))
                c = int(cls[j])
                new_prefixes.append(prefixes[i] + (c,))
                new_pb.append(_NEG)
                new_pnb.append(ext[i, j])
                if lm_ext is not None:
                    new_states.append(lm.next_state(states[i], c))  # type: ignore[union-attr]
                    new_lms.append(lms[i] + lm_ext[i, j])
                else:
                    new_states.append("")
                    new_lms.append(0.0)
        prefixes, states = new_prefixes, new_states
        pb, pnb, lms = np.array(new_pb), np.array(new_pnb), np.array(new_lms)
    total = np.logaddexp(pb, pnb)
    rank = total if lm is None else total + lms + np.array([lm.final(st) for st in states])
    best = int(rank.argmax())
    # The beam's mass for a prefix misses the paths that left the beam: rescore exactly, and compare with greedy
    # (on the CTC score plus the LM's, when there is one).
    indices = prefixes[best]
    score = max(float(total[best]), ctc_sequence_log_prob(lp, indices, blank))
    greedy = greedy_decode(lp, blank)
    if indices == greedy.indices:
        return DecodeResult(indices, score, greedy.frames)
    exact = ctc_sequence_log_prob(lp, greedy.indices, blank)
    if lm is None:
        greedy_wins = exact > score
    else:
        greedy_wins = exact + lm.score(greedy.indices) > score + lm.score(indices)
    if greedy_wins:
        return DecodeResult(greedy.indices, exact, greedy.frames)
    return DecodeResult(indices, score, ctc_align(lp, indices, blank)[0])
