"""How far a run has got, for the learning-rate schedule: a clock that waits for learning to start.

A CTC model trained from scratch first sits on the *blank plateau*: it emits only blanks, the loss
barely moves, and nothing is read. How long that lasts is counted in optimisation steps, not seconds,
so on a slow or busy machine a time-based one-cycle schedule used to anneal the learning rate while
the model was still on the plateau (measured: 8 epochs, 5 minutes on the plateau, by then the LR was
down to 65 % of its peak, and a 10-minute run ended at 20 %). Here the schedule holds the peak (after
its warm-up) until the model reads something, and then spends the rest of the budget on the same
annealing: a slow machine gets a smaller share of the same good run, not a broken one.

"Reads something" is checked on the training batches themselves (free: their log-probs are already
computed): the greedy reading's character error rate on the batch drops to :data:`STARTED_CER`.
"""

from __future__ import annotations

import torch
from rapidfuzz.distance import Levenshtein

from crnn.charset import BLANK

STARTED_CER = 0.7
"""Batch CER at which learning counts as started: well off the plateau's 1.0 (all blanks), long before
any word is right, so the annealing begins as soon as the model has found the characters."""


def batch_cer(log_probs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
              target_lengths: torch.Tensor) -> float:
    """Greedy CER of a training batch: (B, T, C) log-probs, (B,) lengths, concatenated targets."""
    best = log_probs.detach().argmax(-1).cpu()
    lengths, target_lengths, targets = lengths.cpu(), target_lengths.cpu(), targets.cpu()
    edits = chars = 0
    offset = 0
    for b in range(best.shape[0]):
        path = best[b, : int(lengths[b])].tolist()
        pred = [c for i, c in enumerate(path) if c != BLANK and (i == 0 or c != path[i - 1])]
        n = int(target_lengths[b])
        truth = targets[offset: offset + n].tolist()
        offset += n
        edits += Levenshtein.distance(pred, truth)
        chars += n
    return edits / max(chars, 1)


def schedule_progress(clock: float, total: float, warmup: float, started: float | None) -> float:
    """The schedule's progress in [0, 1] at ``clock`` (seconds or steps) of ``total``.

    ``started``: the clock when learning started, or None while the model is still on the plateau.
    Until then progress stops at the end of the warm-up (the peak LR); after it, the rest of the run
    anneals over what is left of ``total``. A model that learns within its warm-up follows the plain
    schedule.

    >>> schedule_progress(50, 100, 0.1, None)   # on the plateau: held at the peak
    0.1
    >>> schedule_progress(50, 100, 0.1, 5)      # learned during the warm-up: the plain schedule
    0.5
    >>> schedule_progress(75, 100, 0.1, 50)     # learned at half time: half of the annealing done
    0.55
    """
    p = clock / max(total, 1e-9)
    if started is None:
        return min(p, warmup)
    s = started / max(total, 1e-9)
    if s <= warmup:
        return p
    return min(1.0, warmup + (1 - warmup) * (p - s) / max(1 - s, 1e-9))


def fastest_threads(step, candidates: list[int], repeats: int = 3) -> tuple[int, dict[int, float]]:
    """Time ``step()`` (one forward and backward pass) at each torch thread count; the fastest and the timings.

    On a quiet 2-core machine two threads are faster; beside other busy processes one thread can be many
    times faster than two (each step waits for the slower thread), so this is measured, not assumed.

    The candidates are timed in turns (2, 1, 2, 1, ...) after one untimed step each, and each is scored by its
    median turn, so a passing load or a process's slow first steps (fresh memory, the thread pool starting)
    do not all land on one candidate. Timed one after the other, twice each, a digit-string model on 2 quiet
    cores measured 0.29-0.39 s with 2 threads against 0.38-0.43 s with 1 in four fresh processes, once within
    1 %, and in one training run took 1 thread (0.439 s against 0.452 s); in turns the same four measured
    0.30-0.32 s against 0.41-0.44 s (BENCHMARKS.md, "Training on any machine").
    """
    import statistics
    import time

    for n in candidates:  # warm-up: allocations, kernel choice, the thread pool
        torch.set_num_threads(n)
        step()
    rounds: dict[int, list[float]] = {n: [] for n in candidates}
    for _ in range(repeats):
        for n in candidates:
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            step()
            rounds[n].append(time.perf_counter() - t0)
    timings = {n: statistics.median(v) for n, v in rounds.items()}
    best = min(timings, key=timings.get)  # type: ignore[arg-type]
    torch.set_num_threads(best)
    return best, timings
