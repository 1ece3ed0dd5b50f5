"""Font discovery, glyph coverage and hold-out splits.

Fonts come from folders the user names, from the system font folders, and from
the DejaVu family that matplotlib bundles (always there once matplotlib is
installed, so a fresh ``pip install`` can render without any system font).

Coverage is read from each font's cmap with fontTools and cached per file: a font
is only ever used for a text when every character of the text is in its cmap.

>>> fonts = list_fonts(system=False)                  # doctest: +SKIP
>>> train, test = split_fonts(fonts, holdout=["DejaVuSerif*"])   # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import ImageFont

FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".otc")
"""File types we scan for; collections (``.ttc``/``.otc``) use their first face."""

SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")

BUNDLED_FONT_NAMES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
)
"""The text faces of matplotlib's ``mpl-data/fonts/ttf`` (not its Display subsets, STIX or TeX fonts)."""

DEFAULT_EXCLUDE = (
    "*LastResort*",
    "*Emoji*",
    "*Symbol*",
    "*Dingbat*",
    "D050000L",
    "Webdings*",
    "Wingdings*",
    "*Braille*",
    "cm*10",
    "STIX*",
    "DejaVu*Display",
)
"""Fonts that map letters to placeholders, pictures or math symbols (which a cmap check cannot
tell from letters: URW's D050000L puts dingbats at ``A``-``Z``), or hold only a handful of glyphs."""


def bundled_font_dir() -> Path | None:
    """matplotlib's bundled font folder, found without importing matplotlib (slow)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "mpl-data" / "fonts" / "ttf"
        if d.is_dir():
            return d
    return None


def bundled_fonts() -> list[Path]:
    """The DejaVu fonts matplotlib ships (empty if matplotlib is not installed)."""
    d = bundled_font_dir()
    if d is None:
        return []
    return [d / name for name in BUNDLED_FONT_NAMES if (d / name).is_file()]


def scan_fonts(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Font files in ``paths`` (folders are searched recursively; files are taken as they are)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_file():
            if p.suffix.lower() in FONT_EXTENSIONS:
                found.append(p)
        elif p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=True):
                dirs.sort()
                for f in sorted(files):
                    if Path(f).suffix.lower() in FONT_EXTENSIONS:
                        found.append(Path(root) / f)
    return found


def font_name(path: str | os.PathLike) -> str:
    """A font's name for hold-out matching and sorting: the file name without extension."""
    return Path(path).stem


def font_family(path: str | os.PathLike) -> str:
    """The family part of a font's name: ``DejaVuSans-BoldOblique`` -> ``DejaVuSans``.

    Hold-out splits go by family so that a bold face in training does not leak its
    regular face into the test fonts.
    """
    name = font_name(path).split("-")[0].split("_")[0].lower()
    if " " in name:  # "Courier Prime Bold Italic", "Anonymous Pro BI": drop the style words
        words = name.split()
        while len(words) > 1 and words[-1] in _STYLE_WORDS:
            words.pop()
        name = " ".join(words)
    return name


_STYLE_WORDS = frozenset(
    "regular bold italic oblique light medium thin black heavy semibold demibold book condensed "
    "b i bi r".split()
)
"""Trailing words of a spaced font name that name a style, not a family."""


def _matches(path: Path, patterns: Sequence[str]) -> bool:
    name = font_name(path).lower()
    full = path.name.lower()
    return any(fnmatch.fnmatchcase(name, p.lower()) or fnmatch.fnmatchcase(full, p.lower()) for p in patterns)


def list_fonts(
    dirs: Iterable[str | os.PathLike] = (),
    system: bool = True,
    bundled: bool = True,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> list[Path]:
    """Every usable font file, deduplicated by name, sorted by name (stable across machines).

    ``dirs`` (folders or files) come first, then the system folders, then matplotlib's
    DejaVu fonts; a name seen twice keeps its first file. If nothing at all is found
    the bundled fonts are used, whatever ``bundled`` says, so there is always a font.
    ``exclude`` holds shell patterns matched against the name (case-insensitive).
    """
    candidates = scan_fonts(dirs)
    if system:
        candidates += scan_fonts(d for d in SYSTEM_FONT_DIRS if Path(d).expanduser().is_dir())
    if bundled:
        candidates += bundled_fonts()
    if not candidates:
        candidates = bundled_fonts()
    seen: dict[str, Path] = {}
    for p in candidates:
        if _matches(p, exclude):
            continue
        seen.setdefault(font_name(p).lower(), p)
    return sorted(seen.values(), key=lambda p: (font_name(p).lower(), font_name(p), str(p)))


def split_fonts(
    fonts: Sequence[Path],
    holdout: Sequence[str] = (),
    fraction: float = 0.0,
    seed: int = 0,
) -> tuple[list[Path], list[Path]]:
    """Split fonts into (train, holdout), deterministically.

    A font is held out when its name matches one of the ``holdout`` shell patterns
    (``"DejaVuSerif*"``, ``"LiberationMono-Regular"``), or when its family falls in the
    ``fraction`` of families chosen by a hash of the family name and ``seed``. The hash
    depends on nothing else, so adding fonts never moves another font across the split.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1], got {fraction}")
    train: list[Path] = []
    test: list[Path] = []
    for f in fonts:
        digest = hashlib.sha256(f"{seed}:{font_family(f)}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        (test if _matches(Path(f), holdout) or u < fraction else train).append(f)
    return train, test


@functools.lru_cache(maxsize=4096)
def font_codepoints(path: str | os.PathLike) -> frozenset[int]:
    """The code points ``path`` has a glyph for (its best cmap), cached per file.

    A font that fontTools cannot read has no code points, so it is never chosen.
    """
    from fontTools.ttLib import TTFont

    try:
        with TTFont(str(path), lazy=True, fontNumber=0) as tt:
            cmap = tt.getBestCmap() or {}
            glyphs = set(tt.getGlyphOrder())
            # a cmap entry pointing at .notdef or at a missing glyph is no glyph
            return frozenset(cp for cp, g in cmap.items() if g != ".notdef" and g in glyphs)
    except Exception:  # any unreadable font is simply unusable
        return frozenset()


def covers(path: str | os.PathLike, text: str) -> bool:
    """True when the font at ``path`` has a glyph for every character of ``text``."""
    cps = font_codepoints(str(path))
    return all(ord(ch) in cps for ch in text)


def missing_chars(path: str | os.PathLike, text: str) -> str:
    """The characters of ``text`` the font has no glyph for, in order of first appearance."""
    cps = font_codepoints(str(path))
    return "".join(dict.fromkeys(ch for ch in text if ord(ch) not in cps))


@functools.lru_cache(maxsize=65536)
def _has_ink(path: str, ch: str) -> bool:
    try:
        return load_font(path, 24).getmask(ch).getbbox() is not None
    except Exception:  # a font Pillow cannot use draws nothing
        return False


def draws_all(path: str | os.PathLike, text: str) -> bool:
    """True when every non-space character of ``text`` leaves ink in the font at ``path``:
    catches cmap entries that point at empty glyphs, which :func:`covers` cannot see."""
    return all(ch == " " or _has_ink(str(path), ch) for ch in text)


@functools.lru_cache(maxsize=512)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font at ``size`` pixels with the basic layout engine.

    The basic engine (no raqm) renders the same on every install, which keeps
    images byte-identical for a seed; it does not shape complex scripts.
    """
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
