"""Synthetic single-line text images with exact ground truth.

>>> import numpy as np
>>> from crnn.synth import SynthConfig, sample
>>> cfg = SynthConfig(system_fonts=False)            # matplotlib's DejaVu fonts only
>>> image, label = sample(np.random.default_rng(0), cfg)
>>> image.height
32

Text comes from a word list (wordfreq), a file of lines, or a regular expression;
fonts from folders, the system and matplotlib's DejaVu family, each only ever used for
text it has every glyph of. Everything random flows from the generator passed in,
so a seed and a config fix every byte.
"""

from crnn.synth.config import SynthConfig, config_from_dict, load_synth_config
from crnn.synth.fonts import (
    bundled_fonts,
    covers,
    draws_all,
    font_codepoints,
    font_family,
    font_name,
    list_fonts,
    missing_chars,
    split_fonts,
)
from crnn.synth.generate import (
    Sample,
    SynthStream,
    fonts_for,
    sample,
    sample_at,
    sample_rng,
    sample_with_info,
    synthesize,
)
from crnn.synth.render import render
from crnn.synth.sampler import TextSampler
from crnn.synth.text import DEFAULT_PATTERNS, RegexGenerator, default_words

__all__ = [
    "DEFAULT_PATTERNS",
    "RegexGenerator",
    "Sample",
    "SynthConfig",
    "SynthStream",
    "TextSampler",
    "bundled_fonts",
    "config_from_dict",
    "covers",
    "default_words",
    "draws_all",
    "font_codepoints",
    "font_family",
    "font_name",
    "fonts_for",
    "list_fonts",
    "load_synth_config",
    "missing_chars",
    "render",
    "sample",
    "sample_at",
    "sample_rng",
    "sample_with_info",
    "split_fonts",
    "synthesize",
]
