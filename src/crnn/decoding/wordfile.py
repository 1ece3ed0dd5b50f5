"""Reading a word-list file (a lexicon's, a language model's) with the one-line errors both need."""

from __future__ import annotations

import os

from crnn.errors import DataError


def read_word_file(path: str | os.PathLike, hint: str) -> str:
    """The text of ``path`` (UTF-8, a BOM allowed), or a :class:`DataError` naming the file: ``hint`` says what
    the file should be when it is not UTF-8."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text at byte {e.start} ({hint})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the word list ({e.strerror or e})") from None
