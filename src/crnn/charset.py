"""The alphabet: the one object that maps text to class indices and back.

Class 0 is always the CTC blank and is *not* a character, so no label character
(``-``, ``_``, a space, anything) can clash with it, unlike the ``-`` blank of
crnn.pytorch. Text is NFC-normalised on the way in, so a label typed with a
combining accent and one typed precomposed are the same label.

>>> cs = Charset.from_labels(["AB-1", "B2"])
>>> cs.chars
'-12AB'
>>> cs.encode("A-B")
[4, 1, 5]
>>> cs.decode([4, 1, 5])
'A-B'
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from crnn.errors import DataError

BLANK = 0


def normalize(text: str) -> str:
    """NFC normalisation, applied to every label and every charset."""
    return unicodedata.normalize("NFC", text)


def _nfc_stable(chars: list[str]) -> str:
    """Join distinct characters so that NFC leaves the string as it is.

    Sorted by code point, a letter can land just before a combining mark (``z`` and
    U+0301) or a Hangul vowel after a consonant; NFC would then merge the pair into
    one character and drop both from the charset. Such characters are moved to a
    place where they stay separate, so ``Charset(cs.chars) == cs`` and every
    character of every label stays encodable.
    """
    text = "".join(chars)
    if unicodedata.is_normalized("NFC", text):
        return text
    out = ""
    for ch in chars:
        for i in range(len(out), -1, -1):
            cand = out[:i] + ch + out[i:]
            if unicodedata.is_normalized("NFC", cand):
                out = cand
                break
        else:  # no place keeps it separate (not seen in practice): NFC may merge it
            out += ch
    return out


class Charset:
    """An ordered set of characters; index ``i + 1`` is ``chars[i]``, 0 is the blank."""

    def __init__(self, chars: str | Sequence[str]):
        text = normalize("".join(chars))
        seen: dict[str, None] = {}
        for ch in text:
            seen.setdefault(ch, None)
        if not seen:
            raise DataError("the charset is empty: no characters to recognise")
        for ch in seen:
            if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\t\n\r":
                raise DataError(f"the charset contains a control character {ch!r}, which cannot appear in a label")
        self.chars = "".join(seen)
        self._index = {ch: i + 1 for i, ch in enumerate(self.chars)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Charset:
        """Every character that occurs in ``labels``, sorted by code point (stable across runs)."""
        chars: set[str] = set()
        for label in labels:
            chars.update(normalize(label))
        return cls(_nfc_stable(sorted(chars)))

    @property
    def num_classes(self) -> int:
        """Characters plus the blank: the size of the model's output layer."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: str) -> bool:
        return ch in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Charset({self.chars!r})"

    def index(self, ch: str) -> int:
        return self._index[ch]

    @property
    def mapping(self) -> dict[str, int]:
        """``{character: class index}`` (a copy; the blank, :data:`BLANK`, is no character)."""
        return dict(self._index)

    def unknown(self, text: str) -> Counter[str]:
        """Characters of ``text`` (after NFC) that are not in the charset, with counts."""
        return Counter(ch for ch in normalize(text) if ch not in self._index)

    def encode(self, text: str) -> list[int]:
        """Class indices of ``text``; raises :class:`DataError` naming any unknown characters."""
        text = normalize(text)
        try:
            return [self._index[ch] for ch in text]
        except KeyError:
            bad = "".join(sorted(self.unknown(text)))
            raise DataError(f"label {text!r} has characters outside the charset: {bad!r}") from None

    def decode(self, indices: Iterable[int]) -> str:
        """Text of class indices; blanks are skipped (repeats are *not* merged: that is the decoder's job)."""
        chars = self.chars
        return "".join(chars[i - 1] for i in indices if i != BLANK)
