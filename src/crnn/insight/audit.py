"""Which labels are most likely wrong: the samples the model most strongly reads as something else.

For each sample the model's per-frame log-probabilities are scored twice with the
exact CTC forward algorithm (:func:`crnn.decoding.beam.ctc_sequence_log_prob`, the
same sum over all alignments that training's ``F.ctc_loss`` minimises):

    margin = NLL(given label) - NLL(greedy reading)
           = log P(reading | image) - log P(label | image)       (natural log, "nats")

Why this score, and why the total rather than per character:

- Confidence alone ranks hard *images*, not wrong *labels*: a blurred crop with a right
  label has low confidence too. The margin asks how much more the model believes its
  own reading than the given label, so a confidently read ``HELL0`` labelled ``HELLO``
  scores high and an unreadable image whose label the model finds about as plausible
  as anything else scores near 0.
- It is a log-likelihood ratio, so it is comparable across images of any length. One
  mistyped character, the usual labelling error, costs about the same margin in a 4- and
  in a 12-character line; dividing by the length would rank the same error in a long
  label lower than in a short one, and a long label is no more likely to be right.
- Greedy reading == label gives exactly 0. Greedy is the best *path*, not always the best
  sequence, so a label slightly more probable than the greedy reading has a small
  negative margin: the model has no quarrel with it.

With the run's loss history (``RUN/sample_losses.tsv``, written by training: each sample's
per-character CTC loss averaged over every step that trained on it), the history ranks instead.
A model that has trained long on a wrong label reproduces it, so its margin is 0 and the margin
alone cannot find it (on the 2,000-CAPTCHA benchmark, 10 of 100 wrong labels in the first 150).
But wrong labels are the last thing a network fits ("small-loss" samples are clean; the idea of
co-teaching and of the area under the margin), so their *mean* loss over the run stays high long
after the final model has memorised them. The ranking then is:

- ``score`` = the sample's mean per-character training loss (nats) where the history has it, with
  the same name and label (a label corrected since training is not judged by the old one's loss);
- for a sample the history lacks (the held-out validation split, never trained on, or data added
  since) ``score`` = its per-character CTC loss now, ``NLL(label) / len(label)``: the same quantity,
  measured once by a model that has not memorised it, so both kinds fall in one ranking;
- ties, and the order among equal scores, by the margin. The margin is not added in: on trained
  samples a high mean loss with margin 0 is exactly the memorised wrong label, and a positive margin
  on a right label (a hard image the model misreads) would only push clean samples up.

Without a history (or when it names none of the samples) the margin alone ranks, as above.

Labels the model cannot score at all (characters outside its charset, or too long for
the image's width) have an infinite margin and come first, each with the reason.
Torch-free: works with any backend that yields log-probabilities (PyTorch, ONNX Runtime).

>>> result = audit(Recognizer.load("runs/exp1/best.pt"), "data/")     # doctest: +SKIP
>>> [(s.name, s.label, s.reading) for s in result.suspects[:3]]       # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace

from crnn.data.sample_losses import SampleLoss, read_sample_losses
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples
from crnn.decoding.beam import ctc_sequence_log_prob
from crnn.decoding.greedy import greedy_decode
from crnn.errors import CrnnError, DataError

AUDIT_FORMAT = "crnn-audit/1"


@dataclass(frozen=True)
class Suspect:
    """One audited sample. ``margin`` (nats) is NLL(label) - NLL(reading); larger is more suspect."""

    name: str
    label: str
    reading: str
    margin: float
    label_nll: float
    reading_nll: float
    confidence: float
    path: str | None = None
    reason: str = ""
    """Why the label could not be scored (then ``margin`` is infinite); empty otherwise."""
    score: float | None = None
    """What ranked it when a loss history was used (per-character CTC loss, nats); None: the margin ranked."""
    scored_by: str = "margin"
    """``margin``; with a history ``train`` (mean training loss) or ``now`` (not in the history: the loss now)."""
    train_loss: float | None = None
    seen: int = 0
    """How many training steps saw the sample (0: not in the history)."""

    @property
    def disagrees(self) -> bool:
        return self.reading != self.label

    def to_dict(self) -> dict:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(x, 4)

        d = {"name": self.name, "path": self.path, "label": self.label, "reading": self.reading,
             "margin": num(self.margin), "label_nll": num(self.label_nll), "reading_nll": num(self.reading_nll),
             "confidence": round(self.confidence, 6)}
        if self.score is not None:
            d.update({"score": num(self.score), "scored_by": self.scored_by,
                      "train_loss": None if self.train_loss is None else num(self.train_loss), "seen": self.seen})
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class AuditResult:
    """Every usable sample of ``data``, most suspect first, and what could not be read."""

    model: str
    data: str
    suspects: list[Suspect]
    report: Report
    label_pattern: str | None = None
    history: str | None = None
    """The loss history that ranked the samples it covers (None: the margin ranked)."""
    history_covered: int = 0
    """How many audited samples the history covers (same name and label)."""
    disagreements: int = field(init=False)

    def __post_init__(self) -> None:
        self.disagreements = sum(s.disagrees for s in self.suspects)

    def top(self, n: int | None) -> list[Suspect]:
        """The ``n`` most suspect samples (all for ``None`` or 0)."""
        return self.suspects if not n else self.suspects[:n]

    def to_dict(self, top: int | None = None) -> dict:
        return {"format": AUDIT_FORMAT, "model": self.model, "data": self.data, "label_pattern": self.label_pattern,
                "samples": len(self.suspects), "disagreements": self.disagreements,
                "skipped": len(self.report.skipped), "score": self.score_description,
                "history": self.history, "history_covered": self.history_covered,
                "suspects": [s.to_dict() for s in self.top(top)]}

    @property
    def score_description(self) -> str:
        if self.history is None:
            return "margin = NLL(label) - NLL(greedy reading), nats"
        return (f"score = mean per-character CTC loss over training (scored_by 'train', {self.history_covered} "
                f"samples in {self.history}), else the per-character loss now (scored_by 'now'), nats; "
                "ties by margin = NLL(label) - NLL(greedy reading)")


def score(log_probs, label_indices, charset) -> tuple[str, float, float, float]:
    """``(reading, label_nll, reading_nll, confidence)`` for one (T, C) log-probability matrix."""
    best = greedy_decode(log_probs)
    label_nll = -ctc_sequence_log_prob(log_probs, label_indices)
    reading_nll = -ctc_sequence_log_prob(log_probs, best.indices)
    return charset.decode(best.indices), label_nll, reading_nll, best.confidence


def audit(recognizer, data: str | os.PathLike, label_pattern: str | None = None, batch_size: int = 64,
          history: str | os.PathLike | dict[str, SampleLoss] | None = None) -> AuditResult:
    """Score every usable sample of ``data`` (folder, labels file or LMDB) and rank them, most suspect first.

    Unreadable samples are skipped and listed in ``result.report``, as in evaluation; ``label_pattern``
    defaults to the one the model was trained with, as in evaluation. ``history``: a run's
    ``sample_losses.tsv`` (or what :func:`~crnn.data.sample_losses.read_sample_losses` returned) to rank
    by the training-loss history (see the module docstring); ``crnn audit`` finds it beside a run's
    ``best.pt`` / ``last.pt``.
    """
    if label_pattern is None:
        label_pattern = getattr(recognizer, "trained_label_pattern", None)
    source = open_source(data, label_pattern)
    report = Report(str(source.location))
    checked = list(check_samples(source, recognizer.preprocess, None, report))
    if not checked:
        raise DataError(f"{source.location}: no usable sample to audit ({len(report.skipped)} skipped)")
    _, lps = recognizer.run_arrays([c.array for c in checked], batch_size, keep_log_probs=True)
    cs = recognizer.charset
    suspects = []
    for c, lp in zip(checked, lps):
        path = str(c.record.path) if c.record.path is not None else None
        unknown = cs.unknown(c.label)
        if unknown:
            reading, _, reading_nll, conf = score(lp, (), cs)
            suspects.append(Suspect(c.record.name, c.label, reading, math.inf, math.inf, reading_nll, conf, path,
                                    f"characters the model cannot output: {''.join(sorted(unknown))!r}"))
            continue
        reading, label_nll, reading_nll, conf = score(lp, cs.encode(c.label), cs)
        reason = "" if math.isfinite(label_nll) else (
            f"label too long for the image: {len(c.label)} characters in {lp.shape[0]} output frames")
        suspects.append(Suspect(c.record.name, c.label, reading, label_nll - reading_nll, label_nll, reading_nll,
                                conf, path, reason))
    history_name = None
    covered = 0
    if history is not None:
        losses = history if isinstance(history, dict) else read_sample_losses(history)
        hits = {s.name: losses[s.name] for s in suspects if s.name in losses and losses[s.name].label == s.label}
        if hits:
            history_name, covered = ("(given)" if isinstance(history, dict) else str(history)), len(hits)
            suspects = [_with_history(s, hits.get(s.name)) for s in suspects]
    if history_name is None:
        suspects.sort(key=lambda s: (-s.margin, -s.confidence, s.name))
    else:
        suspects.sort(key=lambda s: (math.isfinite(s.margin), -(s.score or 0.0), -s.margin, -s.confidence, s.name))
    return AuditResult(str(recognizer.name), str(source.location), suspects, report, label_pattern, history_name,
                       covered)


def _with_history(s: Suspect, h: SampleLoss | None) -> Suspect:
    """``s`` with its ranking score: the mean training loss, or (not in the history) its per-character loss now."""
    if not math.isfinite(s.margin):
        return replace(s, score=math.inf, scored_by="now" if h is None else "train",
                       train_loss=None if h is None else h.mean, seen=0 if h is None else h.seen)
    if h is None:
        return replace(s, score=s.label_nll / max(len(s.label), 1), scored_by="now")
    return replace(s, score=h.mean, scored_by="train", train_loss=h.mean, seen=h.seen)


def load_audit(path: str | os.PathLike) -> dict:
    """An audit written by ``crnn audit --json``; one-line errors naming the file."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except OSError as e:
        raise CrnnError(f"{path}: cannot read the audit file ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise CrnnError(f"{path}: not a JSON audit file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != AUDIT_FORMAT or not isinstance(data.get("suspects"), list):
        raise CrnnError(f"{path}: not an audit file (write one with crnn audit MODEL DATA --json > {path})")
    return data


__all__ = ["audit", "AuditResult", "Suspect", "load_audit", "score", "AUDIT_FORMAT"]
