"""Where synthetic text comes from: word lists, a user's lines, or a regular expression.

Every generator takes a ``numpy.random.Generator`` and never touches global random
state, so a seed fixes the text.

>>> import numpy as np
>>> gen = RegexGenerator(r"\\$\\d{1,3}\\.\\d\\d")
>>> s = gen(np.random.default_rng(0))
>>> import re; bool(re.fullmatch(r"\\$\\d{1,3}\\.\\d\\d", s))
True
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crnn.charset import normalize
from crnn.errors import ConfigError

# --------------------------------------------------------------------------------------------
# A random-string generator for a practical subset of regular expressions.
# --------------------------------------------------------------------------------------------

_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))  # the universe for ".", negated classes and \W \S \D
_DIGITS = string.digits
_WORD = string.ascii_letters + string.digits + "_"
_DOT = _PRINTABLE.replace(" ", "")  # "." never yields a space, so generated text never starts or ends with one


@dataclass(frozen=True)
class _Lit:
    text: str


@dataclass(frozen=True)
class _Class:
    chars: str  # sorted, distinct: iteration order must not depend on hashing


@dataclass(frozen=True)
class _Seq:
    items: tuple


@dataclass(frozen=True)
class _Alt:
    branches: tuple


@dataclass(frozen=True)
class _Repeat:
    node: object
    lo: int
    hi: int | None  # None: unbounded


def _sorted_chars(chars) -> str:
    return "".join(sorted(set(chars)))


class _Parser:
    """Recursive descent over: literals, ``.``, classes, ``\\d \\w \\s`` (and negations),
    groups ``(...)``, ``(?:...)``, ``(?P<name>...)`` with ``|``, quantifiers ``? * + {m} {m,} {m,n} {,n}``
    (lazy/possessive suffixes accepted), anchors ``^ $ \\A \\Z`` (ignored)."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0

    def error(self, msg: str) -> ValueError:
        return ValueError(f"regex {self.p!r}: {msg} at position {self.i}")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def parse(self):
        node = self.alt()
        if self.i < len(self.p):
            raise self.error("unbalanced ')'")
        return node

    def alt(self):
        branches = [self.seq()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.seq())
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def seq(self):
        items = []
        while self.i < len(self.p) and self.peek() not in "|)":
            atom = self.atom()
            atom = self.quantifier(atom)
            if atom is not None:
                items.append(atom)
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def atom(self):
        c = self.p[self.i]
        self.i += 1
        if c == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.p.startswith("?P<", self.i):
                end = self.p.find(">", self.i)
                if end < 0:
                    raise self.error("unterminated group name")
                self.i = end + 1
            elif self.peek() == "?":
                raise self.error("lookarounds, flags and other (?...) groups are not supported")
            node = self.alt()
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.i += 1
            return node
        if c == "[":
            return self.char_class()
        if c == ".":
            return _Class(_DOT)
        if c == "\\":
            return self.escape(in_class=False)
        if c in "^$":
            return None
        if c in "*+?":
            raise self.error("nothing to repeat")
        if c == "{" and self._quant_match(self.i - 1):
            raise self.error("nothing to repeat")
        return _Lit(c)

    _QUANT = re.compile(r"\{(\d*)(,?)(\d*)\}")

    def _quant_match(self, pos: int):
        m = self._QUANT.match(self.p, pos)
        if m and (m.group(1) or m.group(3)):
            return m
        return None

    def quantifier(self, atom):
        c = self.peek()
        if c is None:
            return atom
        lo: int
        hi: int | None
        if c == "?":
            lo, hi = 0, 1
            self.i += 1
        elif c == "*":
            lo, hi = 0, None
            self.i += 1
        elif c == "+":
            lo, hi = 1, None
            self.i += 1
        elif c == "{" and (m := self._quant_match(self.i)):
            a, comma, b = m.groups()
            lo = int(a) if a else 0
            hi = (int(b) if b else None) if comma else lo
            if hi is not None and hi < lo:
                raise self.error("min repeat greater than max repeat")
            self.i = m.end()
        else:
            return atom
        if self.peek() in ("?", "+"):  # lazy or possessive: same strings
            self.i += 1
        if self.peek() is not None and (self.peek() in "*+?" or self._quant_match(self.i)):
            raise self.error("multiple repeat")
        if atom is None:
            raise self.error("nothing to repeat")
        return _Repeat(atom, lo, hi)

    def escape(self, in_class: bool):
        if self.i >= len(self.p):
            raise self.error("bad escape (end of pattern)")
        c = self.p[self.i]
        self.i += 1
        classes = {
            "d": _DIGITS,
            "w": _WORD,
            "s": " ",
            "D": "".join(ch for ch in _PRINTABLE if ch not in _DIGITS),
            "W": "".join(ch for ch in _PRINTABLE if ch not in _WORD),
            "S": _DOT,
        }
        if c in classes:
            return _Class(_sorted_chars(classes[c]))
        simple = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}
        if c in simple:
            return _Lit(simple[c])
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.p[self.i : self.i + width]
            if len(digits) != width or not all(d in string.hexdigits for d in digits):
                raise self.error(f"bad \\{c} escape")
            self.i += width
            return _Lit(chr(int(digits, 16)))
        if not in_class and c in "AZ":
            return None
        if c == "b" and in_class:
            return _Lit("\b")
        if c.isalnum():
            raise self.error(f"\\{c} (boundaries, back-references and other escapes) is not supported")
        return _Lit(c)

    def char_class(self):
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        chars: set[str] = set()
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.error("unterminated character set")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            self.i += 1
            if c == "\\":
                item = self.escape(in_class=True)
                if isinstance(item, _Class):
                    chars.update(item.chars)
                    continue
                c = item.text
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.i += 1
                hi = self.p[self.i]
                self.i += 1
                if hi == "\\":
                    item = self.escape(in_class=True)
                    if isinstance(item, _Class):
                        raise self.error("bad character range")
                    hi = item.text
                if ord(hi) < ord(c):
                    raise self.error("bad character range")
                chars.update(chr(x) for x in range(ord(c), ord(hi) + 1))
            else:
                chars.add(c)
        if negate:
            chars = set(_PRINTABLE) - chars
        if not chars:
            raise self.error("empty character set")
        return _Class(_sorted_chars(chars))


class RegexGenerator:
    """Random strings that ``re.fullmatch(pattern, s)`` accepts.

    ``max_repeat`` bounds the open quantifiers ``* + {m,}`` to at most ``m + max_repeat``
    repetitions. With ``charset``, classes are narrowed to it where they overlap it, so
    a restricted alphabet wastes few draws (literals outside it still make rejects).
    ``.``, negated classes and ``\\D \\W \\S`` draw from printable ASCII.
    """

    def __init__(self, pattern: str, max_repeat: int = 4, charset: str | None = None):
        self.pattern = pattern
        self.max_repeat = max_repeat
        self._charset = set(charset) if charset else None
        self._root = _Parser(pattern).parse()

    def _class_chars(self, node: _Class) -> str:
        if self._charset is None:
            return node.chars
        narrowed = "".join(ch for ch in node.chars if ch in self._charset)
        return narrowed or node.chars

    def _gen(self, node, rng: np.random.Generator, out: list[str]) -> None:
        if node is None:
            return
        if isinstance(node, _Lit):
            out.append(node.text)
        elif isinstance(node, _Class):
            chars = self._class_chars(node)
            out.append(chars[int(rng.integers(len(chars)))])
        elif isinstance(node, _Seq):
            for item in node.items:
                self._gen(item, rng, out)
        elif isinstance(node, _Alt):
            self._gen(node.branches[int(rng.integers(len(node.branches)))], rng, out)
        elif isinstance(node, _Repeat):
            hi = node.lo + self.max_repeat if node.hi is None else node.hi
            for _ in range(int(rng.integers(node.lo, hi + 1))):
                self._gen(node.node, rng, out)
        else:  # pragma: no cover
            raise TypeError(node)

    def __call__(self, rng: np.random.Generator) -> str:
        out: list[str] = []
        self._gen(self._root, rng, out)
        return "".join(out)

    def __repr__(self) -> str:
        return f"RegexGenerator({self.pattern!r})"


# --------------------------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFC, every run of whitespace made one space, no space at either end."""
    return _WS.sub(" ", normalize(text)).strip()


def renderable(text: str) -> bool:
    """True for text the basic layout engine draws faithfully as one line.

    Rejects control, format, private-use and unassigned characters and combining marks
    (which need shaping); the only space allowed is U+0020.
    """
    if not text or text.isspace():
        return False
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "CM" or cat in ("Zl", "Zp") or (cat == "Zs" and ch != " "):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------

DICT_WORDS = Path("/usr/share/dict/words")
_WORD_TOKEN = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _keep_word(w: str) -> bool:
    return bool(_WORD_TOKEN.fullmatch(w)) and (len(w) > 1 or w.lower() in ("a", "i"))


@functools.lru_cache(maxsize=8)
def default_words(language: str = "en", size: int = 30000) -> tuple[str, ...]:
    """The ``size`` most frequent words of ``language`` from wordfreq (data ships in the wheel,
    no download), else ``/usr/share/dict/words`` (Debian ``wamerican``), else an error.

    Only letter words (with inner apostrophes or hyphens) are kept: numbers come from
    the patterns instead.
    """
    try:
        from wordfreq import top_n_list
    except ImportError:
        top_n_list = None  # type: ignore[assignment]
    if top_n_list is not None:
        words = [clean_text(w) for w in top_n_list(language, size)]
        words = [w for w in words if _keep_word(w)]
        if words:
            return tuple(words)
        raise ConfigError(f"wordfreq has no word list for language {language!r}")
    if DICT_WORDS.is_file():
        lines = DICT_WORDS.read_text(encoding="utf-8", errors="replace").splitlines()
        words = [w for w in (clean_text(line) for line in lines) if _keep_word(w)]
        if 0 < size < len(words):  # the list is alphabetical: thin it evenly, not from the top
            words = [words[i] for i in np.linspace(0, len(words) - 1, size).astype(int)]
        return tuple(words)
    raise ConfigError(
        "no word list: install the 'wordfreq' package (pip install wordfreq) or Debian's 'wamerican', "
        "or set text = 'words:FILE' or 'lines:FILE' in the synth config"
    )


@functools.lru_cache(maxsize=8)
def read_items(path: str) -> tuple[str, ...]:
    """The non-empty lines of a UTF-8 text file, cleaned (see :func:`clean_text`)."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read text file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    items = tuple(s for s in (clean_text(line) for line in raw.splitlines()) if s)
    if not items:
        raise ConfigError(f"{p}: no text in file (one item per line expected)")
    return items


# --------------------------------------------------------------------------------------------
# Text sources
# --------------------------------------------------------------------------------------------

DEFAULT_PATTERNS: tuple[str, ...] = (
    r"\d{1,4}",  # 7, 42, 2024
    r"\$\d{1,3}\.\d\d",  # $12.50
    r"\d{1,3}(,\d{3}){1,2}",  # 12,500
    r"\d{1,2}:[0-5]\d",  # 3:45
    r"\d{1,2}/\d{1,2}/(19|20)\d\d",  # 12/31/2024
    r"(19|20)\d\d-(0[1-9]|1[0-2])-[0-2]\d",  # 2024-05-17
    r"\d{1,2}(\.\d)?%",  # 7.5%
    r"\d{1,3}\.\d{1,2}",  # 3.14
    r"[A-Z]{2,3}-?\d{2,4}",  # AB-123
    r"#\d{1,4}",  # #12
    r"€\d{1,3}(,\d\d)?",  # €4,50
    r"\d{1,2}(st|nd|rd|th)",  # 21st
)
"""Number-like tokens mixed into word phrases: prices, times, dates, codes."""

_SUFFIXES = (",", ",", ".", ".", ":", ";", "!", "?", "...")
_WRAPS = (("(", ")"), ("(", ")"), ('"', '"'), ("'", "'"), ("[", "]"), ("“", "”"))
_JOINERS = ("-", "/", "&")


def parse_text_spec(spec: str) -> tuple[str, str | None]:
    """``"words"`` -> ("words", None); ``"words:F"`` -> ("words", F); ``"lines:F"``/``"file:F"``/an existing
    file -> ("lines", F); ``"regex:P"`` -> ("regex", P)."""
    if spec == "words":
        return "words", None
    for prefix, mode in (("words:", "words"), ("lines:", "lines"), ("file:", "lines"), ("regex:", "regex")):
        if spec.startswith(prefix):
            arg = spec[len(prefix) :]
            if not arg:
                raise ConfigError(f"text {spec!r}: nothing after {prefix!r}")
            if mode == "regex":
                try:
                    RegexGenerator(arg)
                except ValueError as e:
                    raise ConfigError(f"text {spec!r}: {e}") from e
            return mode, arg
    if Path(spec).is_file():
        return "lines", spec
    raise ConfigError(
        f"text {spec!r}: expected 'words', 'words:FILE', 'lines:FILE', 'regex:PATTERN' or the path of an existing file"
    )
