"""The decoding flags that ``crnn predict``, ``crnn eval`` and ``crnn serve`` share, defined once.

NumPy-free at import (the language model is loaded only when ``--lm`` is given), so the CLI starts fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crnn.charset import Charset
    from crnn.decoding.charlm import LMScorer


def add_decode_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=0, help="CTC prefix beam search width (0 = greedy; 10 with --lm)")
    p.add_argument("--lexicon", help="word list: decode to the best-scoring word in it")
    p.add_argument("--lm", metavar="en|FILE",
                   help="prefer likely spellings with a character language model: 'en' (wordfreq's English "
                        "words, built in a few seconds) or a word list (one word, or 'word<TAB>count', per line)")
    p.add_argument("--lm-weight", type=float, metavar="W",
                   help="how much the language model counts against the image (default: "
                        "crnn.decoding.charlm.DEFAULT_WEIGHT, chosen on synthetic validation data)")
    p.add_argument("--lm-bonus", type=float, metavar="B",
                   help="score added per character with --lm, against dropped letters (default: "
                        "crnn.decoding.charlm.DEFAULT_BONUS)")


def lm_scorer(args: argparse.Namespace, charset: Charset) -> LMScorer | None:
    """The language model the flags ask for, bound to the model's charset (None without ``--lm``)."""
    if args.lm is None:
        if args.lm_weight is not None or args.lm_bonus is not None:
            from crnn.errors import ConfigError

            raise ConfigError("--lm-weight and --lm-bonus need --lm (a language model to weigh)")
        return None
    from crnn.decoding.charlm import LMScorer, load_lm

    return LMScorer(load_lm(args.lm), charset, weight=args.lm_weight, bonus=args.lm_bonus)


def describe_decoding(args: argparse.Namespace, scorer: LMScorer | None) -> str:
    """How the flags decode, in words, for ``crnn eval``'s summary: a score means little without it."""
    if args.lexicon:
        return f"lexicon {args.lexicon}"
    if scorer is not None:
        from crnn.decoding.charlm import lm_beam_width

        return (f"beam {lm_beam_width(args.beam)} + language model {scorer.lm.name} "
                f"(weight {scorer.weight:g}, bonus {scorer.bonus:g})")
    return f"beam {args.beam}" if args.beam and args.beam > 1 else "greedy"
