"""A labelling session: the queue, the model's pre-filled readings, the checks, progress; no HTTP here.

The queue puts the least confident readings first: those are the images the model
gets wrong most often, so labelling them teaches a fine-tune the most, and the
confident ones left at the end can be accepted quickly. Skipped images go to the
end. In review mode (``crnn label --review AUDIT.json``) the queue is the audit's
suspects in its order, and accepting a label replaces the one they had.

Thread-safe (one lock): the web app calls it from request threads while a
background fine-tune (:mod:`crnn.label.retrain`) swaps in a better model.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from crnn.errors import CrnnError
from crnn.label.store import LABEL_PATTERN, LabelStore


@dataclass(frozen=True)
class Reading:
    """The model's greedy reading of one image, as pre-filled on the page."""

    text: str
    confidence: float


@dataclass
class SessionSettings:
    """``crnn label`` options that shape the session."""

    allowed: str | None = None
    """The only characters a label may hold (``--charset``); None: any."""
    retrain_every: int = 0
    """Fine-tune in the background after every N new labels (0: only from the button)."""
    retrain_budget_s: float = 120.0
    """Training time of one fine-tune."""
    retrain_min: int = 10
    """Labels needed before a fine-tune is worth starting."""
    retrain_set: list[str] = field(default_factory=list)
    """Extra ``--set key=value`` config overrides for the fine-tune."""
    batch_size: int = 32


class LabelRefused(CrnnError):
    """A label the page must correct (or confirm): ``code`` tells the page which."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class LabelSession:
    """The state behind the labelling page; see the module doc."""

    def __init__(self, store: LabelStore, recognizer, settings: SessionSettings | None = None,
                 review: list[tuple[str, str]] | None = None, model_name: str | None = None):
        self.store, self.settings = store, settings or SessionSettings()
        self.lock = threading.RLock()
        self.recognizer = recognizer
        self.model_name = model_name or str(getattr(recognizer, "name", "model"))
        self.model_path = self.model_name
        self.review = [item for item, _ in review] if review is not None else None
        self.given = dict(review or [])
        self.readings: dict[str, Reading] = {}
        self.unreadable: dict[str, str] = {}
        self.version = 0
        self.pinned: str | None = None  # the image an undo brought back, shown next
        self.typed: dict[str, str] = {}  # what was typed for an undone label, to show it again
        self.times: deque[float] = deque(maxlen=30)
        self.ids = {item: i for i, item in enumerate(store.items)}
        self.labelled_since_retrain = 0
        self.retrainer: Any = None  # a crnn.label.retrain.Retrainer once a fine-tune was asked for
        self.readings.update(self.read(self._to_read()))

    # -- readings ----------------------------------------------------------------------------------------------
    def _to_read(self) -> list[str]:
        if self.review is not None:
            return list(self.review)
        return [i for i in self.store.items if i not in self.store.entries]

    def read(self, items: list[str], recognizer=None) -> dict[str, Reading]:
        """The model's reading of each image; unreadable ones go to :attr:`unreadable`."""
        rec = recognizer or self.recognizer
        if not items:
            return {}
        preds = rec.predict([self.store.original(i) for i in items], batch_size=self.settings.batch_size,
                            names=items, on_error="report")
        out = {}
        for item, p in zip(items, preds):
            if p.error:
                self.unreadable[item] = p.error
            else:
                out[item] = Reading(p.text, float(p.confidence))
        return out

    def reading(self, item: str) -> Reading | None:
        with self.lock:
            if item not in self.readings and item not in self.unreadable:
                self.readings.update(self.read([item]))
            return self.readings.get(item)

    def swap_model(self, recognizer, name: str, path: str) -> None:
        """Use a newly trained model: re-read what is still to label, then switch in one step."""
        fresh = self.read(self._to_read(), recognizer)
        with self.lock:
            self.recognizer, self.model_name, self.model_path = recognizer, name, path
            self.readings = fresh
            self.version += 1

    # -- the queue ---------------------------------------------------------------------------------------------
    def _reviewed(self) -> list[str]:
        """The suspects of this review already handled; kept per review, so a later audit's list starts afresh."""
        key = hashlib.sha1("\n".join(self.review or []).encode()).hexdigest()[:16]
        reviews = self.store.extra.setdefault("reviewed", {})
        if not isinstance(reviews, dict) or (key not in reviews and len(reviews) >= 20):
            reviews = self.store.extra["reviewed"] = {}
        return reviews.setdefault(key, [])

    def queue(self) -> list[str]:
        """Images still to label, in the order the page shows them."""
        st = self.store
        skipped = [i for i in st.skipped if i not in self.unreadable]
        if self.review is not None:
            done = set(self._reviewed())
            waiting = [i for i in self.review if i not in done and i not in self.unreadable]
            return [i for i in waiting if i not in st.skipped] + [i for i in skipped if i in waiting]
        todo = [i for i in st.items if i not in st.entries and i not in self.unreadable and i not in st.skipped]
        todo.sort(key=lambda i: (self.readings[i].confidence if i in self.readings else 0.0, i))
        return todo + [i for i in skipped if i not in st.entries]

    def current(self) -> str | None:
        q = self.queue()
        if self.pinned in q:
            return self.pinned
        return q[0] if q else None

    # -- actions -----------------------------------------------------------------------------------------------
    def submit(self, item: str, text: str, confirm: bool = False) -> None:
        """Accept ``text`` as the label of ``item``; raises :class:`LabelRefused` for the page to show."""
        from crnn.charset import normalize
        from crnn.label.store import label_problem

        text = normalize(text)
        with self.lock:
            if item not in self.ids:
                raise LabelRefused("unknown_item", f"{item}: not an image of this session")
            why = label_problem(text, self.store.fmt, self.settings.allowed)
            if why:
                raise LabelRefused("bad_label", why)
            unknown = self.recognizer.charset.unknown(text)
            if unknown and not confirm:
                raise LabelRefused("unknown_chars", f"the model has never seen {''.join(sorted(unknown))!r}: press "
                                                    "Enter again to keep the label (a fine-tune adds the character)")
            prefill = self.readings.get(item)
            if self.review is not None and item not in self._reviewed():
                self._reviewed().append(item)
            self.store.label(item, text, prefill.text if prefill else None)
            self.typed.pop(item, None)
            self.pinned = None
            self.times.append(time.monotonic())
            self.version += 1
            self.labelled_since_retrain += 1
            every = self.settings.retrain_every
            start = every > 0 and self.labelled_since_retrain >= every
        if start:
            self.retrain(auto=True)

    def skip(self, item: str) -> None:
        with self.lock:
            if item not in self.ids:
                raise LabelRefused("unknown_item", f"{item}: not an image of this session")
            self.store.skip(item)
            self.pinned = None
            self.version += 1

    def undo(self) -> str | None:
        """Take back the last label or skip; that image is shown next, with what was typed."""
        with self.lock:
            if self.review is not None and self.store.history and self.store.history[-1]["op"] == "label":
                item = self.store.history[-1]["item"]
                if item in self._reviewed():
                    self._reviewed().remove(item)
            done = self.store.undo()
            if done is None:
                return None
            item, label = done
            if label is not None:
                self.typed[item] = label
                self.labelled_since_retrain = max(0, self.labelled_since_retrain - 1)
                if self.times:
                    self.times.pop()
            self.pinned = item
            self.version += 1
            return item

    def retrain(self, auto: bool = False) -> str:
        """Start a background fine-tune on the labels so far; returns what the page should say."""
        from crnn.label.retrain import Retrainer

        with self.lock:
            n = len(self.store.entries)
            if self.retrainer is not None and self.retrainer.running:
                return "a fine-tune is already running"
            if n < self.settings.retrain_min:
                return f"label at least {self.settings.retrain_min} images first ({n} so far)"
            self.labelled_since_retrain = 0
            if self.retrainer is None:
                self.retrainer = Retrainer(self)
            self.retrainer.start()
            self.version += 1
            return "fine-tuning started" + (" (every " + str(self.settings.retrain_every) + " labels)" if auto else "")

    # -- what the page shows -----------------------------------------------------------------------------------
    def rate_per_min(self) -> float | None:
        t = self.times
        if len(t) < 2 or t[-1] <= t[0]:
            return None
        return (len(t) - 1) / (t[-1] - t[0]) * 60.0

    def state(self) -> dict:
        with self.lock:
            st = self.store
            entries = list(st.entries.values())
            scored = [e for e in entries if e.prefill is not None]
            recent = sorted(scored, key=lambda e: e.at)[-50:]
            item = self.current()
            current = None
            if item is not None:
                r = self.reading(item)
                current = {"id": self.ids[item], "item": item, "prefill": r.text if r else "",
                           "confidence": r.confidence if r else None, "typed": self.typed.get(item),
                           "given": self.given.get(item), "skipped": item in st.skipped}
            review = self.review is not None
            return {
                "version": self.version, "mode": "review" if review else "label",
                "total": len(self.review) if self.review is not None else len(st.items),
                "labelled": len(self._reviewed()) if review else len(entries),
                "skipped": len([i for i in st.skipped if not review or i in self.given]),
                "unreadable": len(self.unreadable), "remaining": len(self.queue()),
                "rate_per_min": self.rate_per_min(),
                "prefill": {"right": sum(e.prefill_right for e in scored), "of": len(scored),
                            "recent_right": sum(e.prefill_right for e in recent), "recent_of": len(recent)},
                "model": self.model_name, "model_charset": self.recognizer.charset.chars,
                "allowed": self.settings.allowed, "format": st.fmt, "out": str(st.out),
                "label_pattern": LABEL_PATTERN if st.fmt == "copies" else None,
                "current": current,
                "retrain": self.retrainer.status() if self.retrainer is not None else
                {"state": "idle", "runs": 0, "message": "", "every": self.settings.retrain_every},
            }


def review_items(store: LabelStore, audit: dict, top: int | None = None) -> list[tuple[str, str]]:
    """The audit's suspects that are copies this session wrote, as ``(item, their label)``, most suspect first.

    Suspects the model agrees with (``reading == label``) are left out: there is nothing to correct.
    """
    out, seen = [], set()
    for s in audit["suspects"]:
        if not isinstance(s, dict) or s.get("reading") == s.get("label"):
            continue
        item = store.item_of_output(s.get("path") or s.get("name") or "")
        if item is not None and item not in seen:
            seen.add(item)
            out.append((item, store.entries[item].label))
    if not out:
        raise CrnnError(f"no suspect of the audit of {audit.get('data')} is an image labelled in {store.out}")
    return out[:top] if top else out


__all__ = ["review_items", "LabelSession", "SessionSettings", "LabelRefused", "Reading"]
