"""Throughput and accuracy of lexicon-constrained CTC decoding on one CPU core.

Builds a random 50,000-word lexicon over a 62-character charset (C = 63 with the
blank) and synthetic (T=24, C=63) log-probability matrices shaped like CRNN
outputs: each planted lexicon word is aligned over the frames (1-3 frames per
character, blanks between), its classes get a high logit, every class gets
Gaussian noise. In the "hard" images one character is confused: another class
wins its frames by a small margin, so that greedy decoding usually reads a
string that is not in the lexicon.

    python benchmarks/lexicon_decode.py [--images 1000] [--words 50000] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without installing
from crnn.decoding.beam import ctc_sequence_log_prob  # noqa: E402
from crnn.decoding.greedy import greedy_decode  # noqa: E402
from crnn.decoding.lexicon import Lexicon  # noqa: E402

CHARS = string.digits + string.ascii_lowercase + string.ascii_uppercase
# Rough English letter frequencies, so that words share prefixes as real ones do.
_FREQ = np.array([8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.2, 0.8, 4.0, 2.4,
                  6.7, 7.5, 1.9, 0.1, 6.0, 6.3, 9.1, 2.8, 1.0, 2.4, 0.2, 2.0, 0.1])


def make_words(n: int, rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    p = _FREQ / _FREQ.sum()
    lower = np.array(list(string.ascii_lowercase))
    while len(words) < n:
        kind = rng.random()
        if kind < 0.1:  # numbers and codes
            w = "".join(rng.choice(list(string.digits + string.ascii_uppercase), rng.integers(2, 9)))
        else:
            w = "".join(rng.choice(lower, rng.integers(2, 13), p=p))
            if kind < 0.3:
                w = w.capitalize()
            elif kind < 0.35:
                w = w.upper()
        words.add(w)
    return sorted(words)


def make_image(word: str, n_frames: int, rng: np.random.Generator, hard: bool) -> np.ndarray:
    """Log-softmax (T, C) matrix whose best reading is (close to) ``word``."""
    n_classes = len(CHARS) + 1
    idx = [CHARS.index(ch) + 1 for ch in word]
    logits = rng.normal(0.0, 1.0, (n_frames, n_classes))
    logits[:, 0] += 7.0  # blank dominates where nothing is written
    # Frames per character (1-3) and a blank gap after each, scaled to fit in T.
    spans = rng.integers(1, 4, len(idx))
    gaps = rng.integers(1, 3, len(idx))
    while spans.sum() + gaps.sum() > n_frames:
        big = spans > 1
        if big.any():
            spans[np.nonzero(big)[0][0]] -= 1
        else:
            gaps[np.nonzero(gaps > 1)[0][0]] -= 1
    t = int(rng.integers(0, n_frames - spans.sum() - gaps.sum() + 1))
    confused = int(rng.integers(len(idx))) if hard else -1
    for k, (c, s, g) in enumerate(zip(idx, spans, gaps)):
        peak = rng.normal(11.0, 1.0)
        logits[t : t + s, c] += peak
        if k == confused:  # another class wins these frames by a small margin
            other = int(rng.choice([o for o in range(1, n_classes) if o != c]))
            logits[t : t + s, other] = logits[t : t + s, c] + rng.uniform(0.2, 1.5)
        t += s + g
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def all_word_scores(log_probs: np.ndarray, sequences) -> np.ndarray:
    """CTC forward algorithm for every word at once (for the exhaustive check)."""
    n_words, longest = len(sequences), max(map(len, sequences))
    ext = np.zeros((n_words, 2 * longest + 1), dtype=np.int64)
    for i, s in enumerate(sequences):
        ext[i, 1 : 2 * len(s) : 2] = s
    skip = np.zeros(ext.shape, dtype=bool)
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    alpha = np.full(ext.shape, -np.inf)
    alpha[:, :2] = log_probs[0][ext[:, :2]]
    for row in log_probs[1:]:
        prev = alpha.copy()
        prev[:, 1:] = np.logaddexp(prev[:, 1:], alpha[:, :-1])
        prev[:, 2:] = np.where(skip[:, 2:], np.logaddexp(prev[:, 2:], alpha[:, :-2]), prev[:, 2:])
        alpha = prev + row[ext]
    ends = 2 * np.array([len(s) for s in sequences])
    rows = np.arange(n_words)
    return np.logaddexp(alpha[rows, ends], alpha[rows, ends - 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--words", type=int, default=50_000)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--hard", type=float, default=0.3, help="fraction of images with a confused character")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = np.random.default_rng(args.seed)
    words = make_words(args.words, rng)
    t0 = time.perf_counter()
    lex = Lexicon(words, CHARS)
    build = time.perf_counter() - t0
    planted = [words[i] for i in rng.integers(len(words), size=args.images)]
    hard = rng.random(args.images) < args.hard
    images = [make_image(w, args.frames, rng, h) for w, h in zip(planted, hard)]

    greedy = [lex.words[i] if (i := lex.word_index("".join(CHARS[c - 1] for c in greedy_decode(x).indices))) is not None
              else None for x in images]
    results = {}
    for name, kwargs in (("exact", {}), ("beam only (exact=False)", {"exact": False})):
        t0 = time.perf_counter()
        out = [lex.decode(x, **kwargs) for x in images]
        elapsed = time.perf_counter() - t0
        results[name] = (out, elapsed)
    out, elapsed = results["exact"]
    got = [lex.word(r.indices) for r in out]
    correct = np.array([g == w for g, w in zip(got, planted)])
    greedy_ok = np.array([g == w for g, w in zip(greedy, planted)])
    # Spot-check optimality against exhaustive scoring of the whole lexicon on a few images.
    n_check = min(5, len(images))
    for x, r in zip(images[:n_check], out[:n_check]):
        scores = all_word_scores(x, lex.sequences)
        assert abs(scores.max() - r.log_prob) < 1e-6, (scores.max(), r.log_prob)
        assert abs(ctc_sequence_log_prob(x, r.indices) - r.log_prob) < 1e-6
    n_classes = len(CHARS) + 1
    print(f"lexicon: {len(lex)} words, built in {build:.2f} s; {args.images} images, {int(hard.sum())} hard")
    print(f"greedy text in lexicon and correct: {greedy_ok.mean():.3f} (hard images: {greedy_ok[hard].mean():.3f})")
    print(f"lexicon decode accuracy: {correct.mean():.3f} "
          f"(easy {correct[~hard].mean():.3f}, hard {correct[hard].mean():.3f})")
    beam_out, beam_elapsed = results["beam only (exact=False)"]
    same = np.mean([a.indices == b.indices for a, b in zip(out, beam_out)])
    print(f"beam only (exact=False): {args.images / beam_elapsed:.0f} images/s, same word as exact on {same:.3f}")
    print(f"exhaustive check of {n_check} images: optimal")
    # Worst case: a flat output (unreadable image), where the bound prunes little.
    flat = rng.normal(0.0, 1.0, (args.frames, n_classes))
    flat -= np.logaddexp.reduce(flat, axis=1, keepdims=True)
    for exact in (True, False):
        t0 = time.perf_counter()
        lex.decode(flat, exact=exact)
        print(f"flat output (unreadable image), exact={exact}: {1e3 * (time.perf_counter() - t0):.1f} ms")
    print(f"lexicon decode: {args.images / elapsed:.0f} images/s "
          f"({len(lex)} words, T={args.frames}, C={n_classes}, 1 core)")


if __name__ == "__main__":
    main()
