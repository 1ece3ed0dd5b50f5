"""The synth configuration: one frozen, typed dataclass, readable from TOML.

Frozen (and so hashable) because fonts and word lists are cached per configuration.
Lists given for tuple fields are turned into tuples.

>>> cfg = SynthConfig(height=48, text="regex:[A-Z]{3}\\\\d{3}", channels=3)
>>> cfg.font_size_range()
(36, 96)
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crnn.errors import ConfigError
from crnn.synth.fonts import DEFAULT_EXCLUDE
from crnn.synth.text import DEFAULT_PATTERNS, RegexGenerator, parse_text_spec


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides what :func:`crnn.synth.sample` draws. Lengths are in pixels
    of the rendering (before the resize to ``height``) unless said otherwise."""

    # --- output -------------------------------------------------------------------------
    height: int = 32
    """Output height; the width follows the text's aspect ratio."""
    channels: int = 1
    """1 = grayscale ("L") images, 3 = RGB."""

    # --- fonts --------------------------------------------------------------------------
    fonts: tuple[str, ...] = ()
    """Font folders (searched recursively) or font files, used before any other font."""
    system_fonts: bool = True
    """Also use the fonts under /usr/share/fonts (and the other usual folders)."""
    bundled_fonts: bool = True
    """Also use matplotlib's DejaVu fonts (always used when no other font is found)."""
    exclude_fonts: tuple[str, ...] = DEFAULT_EXCLUDE
    """Shell patterns of font names (file name without extension) never to use."""
    holdout_fonts: tuple[str, ...] = ()
    """Shell patterns of font names kept out of training (``"DejaVuSerif*"``)."""
    holdout_fraction: float = 0.0
    """Also hold out this fraction of font families, chosen by a hash of the family name."""
    holdout_seed: int = 0
    """Seed of that hash."""
    font_split: str = "train"
    """Which fonts to render with: "train" (all but the held-out), "holdout" (only those) or "all"."""
    font_size: tuple[int, int] | None = None
    """Range of font sizes in pixels; default (0.75, 2) x height."""
    font_balance: str = "file"
    """How a font is drawn: "file" (every font file equally likely) or "family" (every family equally
    likely, then one of its files), so a family shipped in 40 weights does not crowd out the rest."""

    # --- text ---------------------------------------------------------------------------
    text: str = "words"
    """"words", "words:FILE", "lines:FILE" (or "file:FILE" or a path), or "regex:PATTERN"."""
    language: str = "en"
    """wordfreq language for "words"."""
    vocab_size: int = 30000
    """How many of the most frequent words "words" draws from (uniformly)."""
    min_words: int = 1
    max_words: int = 3
    case_mix: tuple[float, float, float] = (0.6, 0.25, 0.15)
    """Weights of a phrase's case: as listed (lower case for "words"), Capitalised, UPPER."""
    punct_prob: float = 0.1
    """Per word: add punctuation (``word,`` ``(word)`` ``"word"`` ``well-known``)."""
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    """Regexes of number-like tokens (prices, times, dates, codes) mixed into phrases."""
    pattern_prob: float = 0.1
    """Per word: use a token from ``patterns`` instead."""
    charset: str | None = None
    """If set, only texts made of these characters are emitted."""
    max_chars: int = 40
    """Longer texts are drawn again (0: no limit)."""

    # --- appearance ---------------------------------------------------------------------
    min_contrast: float = 80.0
    """Least luminance difference (0-255) between text and every background pixel, before noise."""
    dark_text_prob: float = 0.7
    """Dark text on a light background, else light on dark."""
    color_prob: float = 0.5
    """RGB only: chance that text and background get colours rather than greys."""
    background_mix: tuple[float, float, float] = (0.4, 0.3, 0.3)
    """Weights of flat, gradient and noise-texture backgrounds."""
    texture_strength: float = 35.0
    """Largest amplitude (0-255) of a noise-texture background."""
    pad_x: tuple[float, float] = (0.0, 0.5)
    """Padding left and right of the ink, drawn per side, in units of the font size."""
    pad_y: tuple[float, float] = (0.0, 0.25)
    """Padding above and below (on top of a random part of the line's ascent/descent), in font sizes."""
    tight_prob: float = 0.0
    """Chance that a rigid line is cut to its ink instead, as a text detector boxes it: no room for
    ascenders or descenders the text lacks, so "ace" fills the height as "ACE" does."""
    tight_margin: tuple[float, float] = (0.0, 0.15)
    """Margin around the ink of such a line, drawn per side, in units of the font size."""
    rotation: float = 2.0
    """Largest rotation in degrees (either way)."""
    shear: float = 0.25
    """Largest horizontal shear (slant), as x-shift per unit of height."""
    stretch: float = 0.15
    """Largest relative change of the aspect ratio in the resize."""
    blur_prob: float = 0.3
    blur: float = 0.8
    """Largest Gaussian blur radius, in output pixels."""
    noise_prob: float = 0.3
    noise: float = 12.0
    """Largest standard deviation of Gaussian pixel noise (0-255)."""
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (25, 90)

    # --- real captures: photographs and scans (crnn.synth.scene) --------------------------
    scene_prob: float = 0.0
    """Chance that a line is coloured as a photographed word instead: a photo-like background (colour
    blobs, blocks, uneven light), coloured ink (converted to grey for 1-channel configs, so contrast can
    be low), sometimes the neighbouring lines' ink cut at the edges, an outline or a shadow."""
    scene_min_contrast: float = 25.0
    """Least luma difference (0-255) between such a line's ink and its background's mean."""
    outline_prob: float = 0.2
    """Of the scene lines: an outline (stroke) around the letters."""
    shadow_prob: float = 0.2
    """Of the scene lines: a drop shadow."""
    curve_prob: float = 0.0
    """Chance of a curved baseline (an arc or a wave), as on a bottle or a round sign."""
    curve: float = 0.3
    """Largest displacement of the baseline, in units of the line's height."""
    perspective_prob: float = 0.0
    """Chance of a perspective view (one end taller, corners moved)."""
    perspective: float = 0.25
    """Largest corner movement, in units of the line's height."""
    lowres_prob: float = 0.0
    """Chance that the line was captured small and upscaled (blur and blocky edges)."""
    lowres_height: tuple[int, int] = (10, 24)
    """Height range, in pixels, of that small capture."""
    binarize_prob: float = 0.0
    """Chance of a scanner's black-and-white output (threshold, then speckle)."""
    speckle: float = 0.01
    """Largest share of pixels flipped by speckle in a binarised line."""

    # --- CAPTCHA-like distortion (crnn.synth.glyphs) --------------------------------------
    glyph_warp_prob: float = 0.0
    """Chance that a sample is drawn glyph by glyph: each character rotated and warped on its own,
    letters crowded, dots and an arc across the text. 0 keeps rigid printed lines only."""
    glyph_rotation: float = 30.0
    """Largest rotation of one character, in degrees (either way)."""
    glyph_warp: float = 1.0
    """Strength of each character's quadrilateral warp (1 = as strong as the captcha package's)."""
    glyph_overlap: float = 0.25
    """Largest overlap of neighbouring letters, in average letter widths."""
    glyph_clutter: bool = True
    """Draw noise dots and an arc across glyph-by-glyph text."""
    glyph_squash: float = 0.0
    """Share of glyph-by-glyph lines drawn as the captcha package draws them: each rotated character is
    squeezed back into its upright ink box (so it stands upright but bent, rather than tilted) and the
    anti-aliased ink is darkened into bold strokes. 0 keeps the tilted glyphs only."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        if isinstance(self.fonts, str):
            object.__setattr__(self, "fonts", (self.fonts,))
        self._validate()

    def _validate(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"synth config: {name} = {getattr(self, name)!r}: {why}")

        def prob(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise bad(name, "must be a number in [0, 1]")

        def nonneg(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise bad(name, "must be a number >= 0")

        def pair(name: str, lo: float = 0.0) -> None:
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
                raise bad(name, "must be a pair [low, high]")
            if not lo <= v[0] <= v[1]:
                raise bad(name, f"needs {lo} <= low <= high")

        def weights(name: str) -> None:
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 3 and all(isinstance(x, (int, float)) and x >= 0 for x in v)):
                raise bad(name, "must be three weights >= 0")
            if sum(v) <= 0:
                raise bad(name, "weights must not all be 0")

        if not isinstance(self.height, int) or self.height < 8:
            raise bad("height", "must be an integer >= 8")
        if self.channels not in (1, 3):
            raise bad("channels", "must be 1 (grayscale) or 3 (RGB)")
        if self.font_split not in ("train", "holdout", "all"):
            raise bad("font_split", "must be 'train', 'holdout' or 'all'")
        for name in ("fonts", "exclude_fonts", "holdout_fonts", "patterns"):
            v = getattr(self, name)
            if not (isinstance(v, tuple) and all(isinstance(x, str) for x in v)):
                raise bad(name, "must be a list of strings")
        for name in ("holdout_fraction", "color_prob", "dark_text_prob", "punct_prob", "pattern_prob"):
            prob(name)
        for name in ("blur_prob", "noise_prob", "jpeg_prob", "glyph_warp_prob", "tight_prob",
                     "glyph_squash", "scene_prob", "outline_prob", "shadow_prob", "curve_prob", "perspective_prob",
                     "lowres_prob", "binarize_prob", "speckle"):
            prob(name)
        for name in ("rotation", "shear", "stretch", "blur", "noise", "texture_strength", "min_contrast",
                     "glyph_rotation", "glyph_warp", "glyph_overlap", "scene_min_contrast", "curve", "perspective"):
            nonneg(name)
        if self.scene_min_contrast > 160:
            raise bad("scene_min_contrast", "must be <= 160")
        pair("lowres_height", lo=4)
        if self.stretch >= 1:
            raise bad("stretch", "must be < 1")
        if self.min_contrast + self.texture_strength > 200:
            raise bad("min_contrast", "min_contrast + texture_strength must be <= 200")
        if self.font_size is not None:
            pair("font_size", lo=4)
        pair("pad_x")
        pair("pad_y")
        pair("tight_margin")
        if self.font_balance not in ("file", "family"):
            raise bad("font_balance", "must be 'file' or 'family'")
        pair("jpeg_quality", lo=1)
        if self.jpeg_quality[1] > 100:
            raise bad("jpeg_quality", "must be within [1, 100]")
        weights("case_mix")
        weights("background_mix")
        if not (isinstance(self.min_words, int) and isinstance(self.max_words, int) and 1 <= self.min_words):
            raise bad("min_words", "min_words and max_words must be integers >= 1")
        if self.max_words < self.min_words:
            raise bad("max_words", f"must be >= min_words ({self.min_words})")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 1:
            raise bad("vocab_size", "must be an integer >= 1")
        if not isinstance(self.max_chars, int) or self.max_chars < 0:
            raise bad("max_chars", "must be an integer >= 0 (0: no limit)")
        if self.charset is not None and (not isinstance(self.charset, str) or not self.charset):
            raise bad("charset", "must be a non-empty string of characters")
        if not isinstance(self.text, str):
            raise bad("text", "must be a string")
        parse_text_spec(self.text)
        for p in self.patterns:
            try:
                RegexGenerator(p)
            except ValueError as e:
                raise bad("patterns", str(e)) from e

    def font_size_range(self) -> tuple[int, int]:
        if self.font_size is not None:
            return int(self.font_size[0]), int(self.font_size[1])
        return max(8, round(0.75 * self.height)), 2 * self.height

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-able values (tuples as lists, no None)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


_FIELDS = {f.name for f in dataclasses.fields(SynthConfig)}


def config_from_dict(
    data: dict[str, Any], base_dir: str | os.PathLike | None = None, where: str = "synth config"
) -> SynthConfig:
    """A :class:`SynthConfig` from a mapping; relative font and text-file paths are taken
    relative to ``base_dir`` when given."""
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(_FIELDS), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{where}: unknown key(s) {', '.join(hints)}")
    data = dict(data)
    if base_dir is not None:
        base = Path(base_dir)

        def resolve(p: str) -> str:
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else base / q)

        if "fonts" in data:
            fonts = data["fonts"]
            data["fonts"] = [resolve(p) for p in ([fonts] if isinstance(fonts, str) else fonts)]
        text = data.get("text")
        if isinstance(text, str) and text != "words" and not text.startswith("regex:"):
            for prefix in ("words:", "lines:", "file:"):
                if text.startswith(prefix):
                    data["text"] = prefix + resolve(text[len(prefix) :])
                    break
            else:
                data["text"] = "lines:" + resolve(text)
    try:
        return SynthConfig(**data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}".replace(": synth config:", ":")) from e
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def load_synth_config(path: str | os.PathLike) -> SynthConfig:
    """Read a TOML (or YAML) synth config: keys at the top level, or under a ``[synth]`` table.

    Relative paths in ``fonts`` and ``text`` are relative to the config file.
    """
    from crnn.config import read_table

    p = Path(path)
    data = read_table(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a synth config must be a table of settings")
    if isinstance(data.get("synth"), dict):
        data = data["synth"]
    return config_from_dict(data, base_dir=p.parent, where=str(p))
