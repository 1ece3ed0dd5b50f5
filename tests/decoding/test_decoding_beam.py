"""crnn.decoding.beam: CTC prefix beam search and exact sequence scoring, checked by enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crnn.decoding.beam import beam_search, ctc_align, ctc_sequence_log_prob
from crnn.decoding.greedy import greedy_decode


def log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def random_log_probs(rng: np.random.Generator, n_frames: int, n_classes: int, scale: float = 2.0) -> np.ndarray:
    return log_softmax(rng.normal(0.0, scale, (n_frames, n_classes)))


def collapse(path, blank: int = 0) -> tuple[int, ...]:
    out, prev = [], None
    for p in path:
        if p != prev and p != blank:
            out.append(int(p))
        prev = p
    return tuple(out)


def brute_force(log_probs: np.ndarray, blank: int = 0) -> tuple[dict[tuple[int, ...], float], dict]:
    """Sum (and max) over all C**T paths, per label sequence."""
    n_frames, n_classes = log_probs.shape
    total: dict[tuple[int, ...], float] = {}
    best: dict[tuple[int, ...], tuple[float, tuple[int, ...]]] = {}
    for path in itertools.product(range(n_classes), repeat=n_frames):
        score = float(sum(log_probs[t, c] for t, c in enumerate(path)))
        key = collapse(path, blank)
        total[key] = float(np.logaddexp(total.get(key, -np.inf), score))
        if key not in best or score > best[key][0]:
            best[key] = (score, path)
    return total, best


def peaked(path: list[int], n_classes: int, rng: np.random.Generator, margin: float = 8.0) -> np.ndarray:
    """Log-probs whose frame ``t`` strongly prefers class ``path[t]``."""
    logits = rng.normal(0.0, 0.5, (len(path), n_classes))
    logits[np.arange(len(path)), path] += margin
    return log_softmax(logits)


def random_path(label: list[int], n_frames: int, rng: np.random.Generator, blank: int = 0) -> list[int]:
    """A frame path of length ``n_frames`` that collapses to ``label`` (blanks between repeats)."""
    tokens: list[int] = []
    for i, c in enumerate(label):
        if i and label[i - 1] == c:
            tokens.append(blank)
        tokens.append(c)
    assert len(tokens) <= n_frames
    # Spread the spare frames over 2k+1 slots: blanks before each token / at the end, or a longer token run.
    slots = np.bincount(rng.integers(0, 2 * len(tokens) + 1, n_frames - len(tokens)), minlength=2 * len(tokens) + 1)
    path: list[int] = []
    for i, tok in enumerate(tokens):
        path += [blank] * int(slots[2 * i]) + [tok] * (1 + int(slots[2 * i + 1]))
    path += [blank] * int(slots[-1])
    assert collapse(path, blank) == tuple(label) and len(path) == n_frames
    return path


@pytest.mark.parametrize("seed", range(6))
def test_ctc_sequence_log_prob_matches_path_enumeration(seed):
    rng = np.random.default_rng(seed)
    n_frames, n_classes = int(rng.integers(1, 6)), int(rng.integers(2, 4))
    lp = random_log_probs(rng, n_frames, n_classes)
    total, _ = brute_force(lp)
    for seq, score in total.items():
        assert ctc_sequence_log_prob(lp, seq) == pytest.approx(score, abs=1e-9)
    # All label sequences together hold all the probability mass.
    assert np.logaddexp.reduce(list(total.values())) == pytest.approx(0.0, abs=1e-9)
    # A sequence that cannot fit in T frames (a repeat needs a blank between) has probability 0.
    assert ctc_sequence_log_prob(lp, [1] * (n_frames + 1)) == -np.inf
    if n_frames < 3:
        assert ctc_sequence_log_prob(lp, [1, 1]) == -np.inf and (1, 1) not in total


def test_ctc_sequence_log_prob_other_blank_index():
    rng = np.random.default_rng(7)
    lp = random_log_probs(rng, 4, 3)
    moved = lp[:, [1, 2, 0]]  # blank is now the last class; classes 1, 2 became 0, 1
    for seq in [(), (1,), (2, 1), (1, 1), (2, 2, 1)]:
        expected = ctc_sequence_log_prob(lp, seq)
        assert ctc_sequence_log_prob(moved, [c - 1 for c in seq], blank=2) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError):
        ctc_sequence_log_prob(lp, [0, 1])  # the blank is not a label


@pytest.mark.parametrize("seed", range(4))
def test_ctc_align_is_the_best_path(seed):
    rng = np.random.default_rng(100 + seed)
    lp = random_log_probs(rng, 5, 3)
    _, best = brute_force(lp)
    for seq, (score, path) in best.items():
        frames, got = ctc_align(lp, seq)
        assert got == pytest.approx(score, abs=1e-9)
        # Frames are where the best path (unique: continuous random scores) starts each label's run.
        starts = tuple(t for t in range(5) if path[t] != 0 and (t == 0 or path[t - 1] != path[t]))
        assert frames == starts
    assert ctc_align(lp, [1] * 6) == ((), -np.inf)


def test_beam_equals_greedy_on_peaked_outputs():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n_classes = int(rng.integers(3, 12))
        label = list(rng.integers(1, n_classes, rng.integers(0, 7)))
        lp = peaked(random_path(label, 16, rng), n_classes, rng)
        greedy, beam = greedy_decode(lp), beam_search(lp, beam_width=5)
        assert beam.indices == greedy.indices == tuple(label)
        assert beam.frames == greedy.frames
        assert beam.log_prob >= greedy.log_prob - 1e-12
        assert beam.log_prob == pytest.approx(ctc_sequence_log_prob(lp, label), abs=1e-9)


@settings(max_examples=60, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(1, 12),
    n_classes=st.integers(2, 8),
    scale=st.floats(0.1, 6.0),
    beam_width=st.integers(1, 6),
)
def test_beam_never_below_greedy(seed, n_frames, n_classes, scale, beam_width):
    lp = random_log_probs(np.random.default_rng(seed), n_frames, n_classes, scale)
    greedy, beam = greedy_decode(lp), beam_search(lp, beam_width=beam_width)
    assert beam.log_prob >= greedy.log_prob - 1e-9  # best path <= sum over the greedy sequence's paths
    assert beam.log_prob >= ctc_sequence_log_prob(lp, greedy.indices) - 1e-9
    assert beam.log_prob == pytest.approx(ctc_sequence_log_prob(lp, beam.indices), abs=1e-9)
    assert len(beam.frames) == len(beam.indices) and list(beam.frames) == sorted(set(beam.frames))


def test_beam_never_below_greedy_seeded():
    rng = np.random.default_rng(2)
    for _ in range(100):
        lp = random_log_probs(rng, int(rng.integers(1, 30)), int(rng.integers(2, 40)), float(rng.uniform(0.5, 5)))
        greedy = greedy_decode(lp)
        beam = beam_search(lp, beam_width=int(rng.integers(1, 10)), prune=None if rng.random() < 0.5 else -5.0)
        assert beam.log_prob >= ctc_sequence_log_prob(lp, greedy.indices) - 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_wide_beam_is_the_exact_argmax(seed):
    rng = np.random.default_rng(200 + seed)
    n_frames, n_classes = int(rng.integers(1, 6)), int(rng.integers(2, 4))
    lp = random_log_probs(rng, n_frames, n_classes, scale=float(rng.uniform(0.3, 3)))
    total, _ = brute_force(lp)
    best = max(total, key=total.get)
    beam = beam_search(lp, beam_width=1000, prune=None)  # wider than the number of prefixes: no pruning
    assert beam.log_prob == pytest.approx(total[best], abs=1e-9)
    assert total[beam.indices] == pytest.approx(total[best], abs=1e-9)


def test_beam_finds_what_greedy_misses():
    # Two frames of 70% blank / 30% "a": the best path reads "" (0.49), but "a" has 0.51 of the mass,
    # spread over three paths (a a, a _, _ a) that the beam must merge into one prefix.
    lp = np.log(np.array([[0.7, 0.3], [0.7, 0.3]]))
    assert greedy_decode(lp).indices == ()
    for width in (2, 3, 10):
        res = beam_search(lp, beam_width=width)
        assert res.indices == (1,) and res.log_prob == pytest.approx(math.log(0.51))
        assert res.frames in ((0,), (1,))
