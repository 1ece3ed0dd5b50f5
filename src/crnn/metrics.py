"""Recognition metrics: word accuracy (case-sensitive and not), CER, normalised edit distance.

Edit distances come from rapidfuzz (C++), so scoring never slows evaluation.

>>> m = TextMetrics()
>>> m.update(["HELLO", "World"], ["HELLO", "world"])
>>> m.accuracy, m.accuracy_nocase, round(m.cer, 3)
(0.5, 1.0, 0.1)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

SUB, DEL, INS = "substitution", "deletion", "insertion"


def char_edits(truth: str, pred: str) -> list[tuple[str, str, str]]:
    """``(kind, truth_char, predicted_char)`` for each edit turning ``truth`` into ``pred`` ('' = none)."""
    out = []
    for op in Levenshtein.editops(truth, pred):
        if op.tag == "replace":
            out.append((SUB, truth[op.src_pos], pred[op.dest_pos]))
        elif op.tag == "delete":
            out.append((DEL, truth[op.src_pos], ""))
        elif op.tag == "insert":
            out.append((INS, "", pred[op.dest_pos]))
    return out


def confusions(pairs: Iterable[tuple[str, str]]) -> Counter[tuple[str, str, str]]:
    """Counts of ``(kind, truth_char, predicted_char)`` over ``(truth, prediction)`` pairs."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for truth, pred in pairs:
        counts.update(char_edits(truth, pred))
    return counts


@dataclass
class Error:
    name: str
    truth: str
    pred: str
    confidence: float
    distance: int


@dataclass
class TextMetrics:
    """Accumulates predictions against ground truth."""

    n: int = 0
    correct: int = 0
    correct_nocase: int = 0
    char_errors: int = 0
    chars: int = 0
    ned_sum: float = 0.0
    by_length: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    errors: list[Error] = field(default_factory=list)

    def update(self, truths: list[str], preds: list[str], names: list[str] | None = None,
               confidences: list[float] | None = None) -> None:
        for i, (t, p) in enumerate(zip(truths, preds)):
            d = Levenshtein.distance(t, p)
            self.n += 1
            self.correct += t == p
            self.correct_nocase += t.lower() == p.lower()
            self.char_errors += d
            self.chars += len(t)
            self.ned_sum += d / max(len(t), len(p), 1)
            bucket = self.by_length[len(t)]
            bucket[0] += 1
            bucket[1] += t == p
            if t != p:
                self.errors.append(Error(names[i] if names else str(self.n), t, p,
                                         confidences[i] if confidences else float("nan"), d))

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_nocase(self) -> float:
        return self.correct_nocase / self.n if self.n else 0.0

    @property
    def cer(self) -> float:
        """Character error rate: total edit distance over total ground-truth characters."""
        return self.char_errors / self.chars if self.chars else 0.0

    @property
    def ned(self) -> float:
        """Mean normalised edit distance (0 = perfect), as in ICDAR 2019."""
        return self.ned_sum / self.n if self.n else 0.0

    def worst(self, k: int = 10) -> list[Error]:
        """The ``k`` worst errors: largest edit distance first, then most confident."""
        return sorted(self.errors, key=lambda e: (-e.distance, -(e.confidence if e.confidence == e.confidence
                                                                  else 0)))[:k]

    def char_errors_top(self, k: int = 10) -> list[tuple[tuple[str, str, str], int]]:
        """The ``k`` most frequent character edits over all errors, e.g. ``(("substitution", "0", "O"), 17)``.

        Tells a user *what* the model gets wrong (one look-alike pair, a dropped
        character, a stray one) rather than only how often.
        """
        return confusions((e.truth, e.pred) for e in self.errors).most_common(k)

    def summary(self, worst: int = 10) -> dict:
        return {
            "samples": self.n,
            "word_accuracy": self.accuracy,
            "word_accuracy_nocase": self.accuracy_nocase,
            "cer": self.cer,
            "ned": self.ned,
            "accuracy_by_length": {str(k): {"samples": v[0], "accuracy": v[1] / v[0]}
                                   for k, v in sorted(self.by_length.items())},
            "worst_errors": [e.__dict__ for e in self.worst(worst)],
            "top_char_errors": [{"kind": kind, "truth": a, "pred": b, "count": n}
                                for (kind, a, b), n in self.char_errors_top(worst)],
        }
