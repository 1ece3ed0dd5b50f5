"""crnn.synth.fonts: bundled fonts, glyph coverage, families and hold-out splits."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from crnn.errors import DataError
from crnn.synth import (
    SynthConfig,
    bundled_fonts,
    list_fonts,
    render,
    sample_at,
    sample_with_info,
    split_fonts,
)
from crnn.synth import generate as gen_mod
from crnn.synth.fonts import bundled_font_dir


def cmap_of(path: str) -> set[int]:
    """Read the cmap afresh (not through the package's cache) so the check is independent."""
    with TTFont(path, fontNumber=0) as tt:
        return set(tt.getBestCmap())


def test_family_balance_gives_each_family_an_equal_share(tmp_path):
    sans = bundled_font_dir() / "DejaVuSans.ttf"
    for k in range(6):  # one family in six files
        shutil.copy(sans, tmp_path / f"Wide-W{k}.ttf")
    shutil.copy(bundled_font_dir() / "DejaVuSerif.ttf", tmp_path / "Lone.ttf")
    shares = {}
    for balance in ("file", "family"):
        c = SynthConfig(fonts=(str(tmp_path),), system_fonts=False, bundled_fonts=False, font_balance=balance)
        ctx = gen_mod._context(c)
        rng = np.random.default_rng(0)
        picks = [Path(ctx.pick_font("abc", rng)).stem for _ in range(600)]
        shares[balance] = picks.count("Lone") / len(picks)
    assert 0.08 < shares["file"] < 0.25  # 1 file of 7
    assert 0.40 < shares["family"] < 0.60  # 1 family of 2


@pytest.mark.parametrize("name,family", [
    ("DejaVuSans-BoldOblique", "dejavusans"),
    ("FreeSerifBold", "freeserifbold"),  # unchanged: existing hold-out splits must not move
    ("Courier Prime Bold Italic", "courier prime"),
    ("Courier Prime Code", "courier prime code"),
    ("Anonymous Pro BI", "anonymous pro"),
    ("Anonymous Pro Minus", "anonymous pro minus"),
])
def test_font_family_drops_spaced_style_words(name, family):
    from crnn.synth.fonts import font_family

    assert font_family(Path(f"/x/{name}.ttf")) == family


def test_bundled_fonts_always_available():
    fonts = bundled_fonts()
    names = {f.name for f in fonts}
    assert {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif-Italic.ttf"} <= names
    # with nothing else to find, list_fonts falls back to them
    assert list_fonts([], system=False, bundled=False) == sorted(fonts, key=lambda p: (p.stem.lower(), p.stem))


def test_every_label_char_has_a_glyph_in_the_font_used(words_file):
    # matplotlib's TeX (cm*) and STIX fonts lack many characters: a strict test of the choice
    c = SynthConfig(
        fonts=(str(bundled_font_dir()),),
        system_fonts=False,
        bundled_fonts=False,
        exclude_fonts=("*LastResort*",),
        text=f"words:{words_file}",
        punct_prob=0.5,
        pattern_prob=0.3,
        patterns=(r"€\d{1,3}", r"\$\d\.\d\d", r"\d{1,2}:\d\d", r"[A-Z]{2}-\d{2}"),
    )
    used = set()
    for i in range(80):
        s = sample_at(c, 11, i)
        cmap = cmap_of(s.font)
        assert all(ord(ch) in cmap for ch in s.text), (s.text, s.font)
        used.add(Path(s.font).name)
    assert len(used) > 5  # many fonts take part, not only the widest one


@pytest.fixture(scope="module")
def partial_fonts(tmp_path_factory) -> Path:
    """Two faces of DejaVu Sans: one complete, one lacking 'Ω' and 'é'."""
    from fontTools import subset

    d = tmp_path_factory.mktemp("fonts")
    src = next(f for f in bundled_fonts() if f.name == "DejaVuSans.ttf")
    shutil.copy(src, d / "Full.ttf")
    opts = subset.Options()
    opts.notdef_outline = True
    font = subset.load_font(str(src), opts)
    sub = subset.Subsetter(opts)
    sub.populate(text="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,")
    sub.subset(font)
    subset.save_font(font, str(d / "Lacking.ttf"), opts)
    assert ord("Ω") not in cmap_of(str(d / "Lacking.ttf")) and ord("Ω") in cmap_of(str(d / "Full.ttf"))
    return d


def test_font_lacking_a_glyph_is_never_chosen_for_it(partial_fonts, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("Ωmega\ncafé\nplain text\nsimple\n", encoding="utf-8")
    c = SynthConfig(fonts=(str(partial_fonts),), system_fonts=False, bundled_fonts=False, text=f"lines:{lines}")
    fonts_for_text: dict[str, set[str]] = {}
    for i in range(80):
        s = sample_with_info(np.random.default_rng([5, i]), c)
        fonts_for_text.setdefault(s.text, set()).add(Path(s.font).name)
    assert fonts_for_text["Ωmega"] == {"Full.ttf"}
    assert fonts_for_text["café"] == {"Full.ttf"}
    # the lacking font is used where it can be, so the check above can fail
    assert fonts_for_text["plain text"] == {"Full.ttf", "Lacking.ttf"}
    with pytest.raises(ValueError, match="no glyph"):
        render("Ωmega", partial_fonts / "Lacking.ttf", np.random.default_rng(0), c)


def test_font_mapping_a_char_to_an_empty_glyph_is_never_chosen_for_it(tmp_path):
    src = next(f for f in bundled_fonts() if f.name == "DejaVuSans.ttf")
    shutil.copy(src, tmp_path / "Good.ttf")
    with TTFont(str(src)) as tt:  # "Ω" in the cmap, but drawn with the (empty) space glyph
        for table in tt["cmap"].tables:
            if table.isUnicode() and ord("Ω") in table.cmap:
                table.cmap[ord("Ω")] = table.cmap[ord(" ")]
        tt.save(str(tmp_path / "Blank.ttf"))
    assert ord("Ω") in cmap_of(str(tmp_path / "Blank.ttf"))
    lines = tmp_path / "lines.txt"
    lines.write_text("Ωmega\nplain\n", encoding="utf-8")
    c = SynthConfig(fonts=(str(tmp_path),), system_fonts=False, bundled_fonts=False, text=f"lines:{lines}")
    used: dict[str, set[str]] = {}
    for i in range(40):
        s = sample_at(c, 1, i)
        used.setdefault(s.text, set()).add(Path(s.font).name)
    assert used == {"Ωmega": {"Good.ttf"}, "plain": {"Good.ttf", "Blank.ttf"}}


def test_text_no_font_covers_is_replaced_or_rejected(partial_fonts, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("漢字\nhello\n", encoding="utf-8")  # no DejaVu face has CJK ideographs
    c = SynthConfig(fonts=(str(partial_fonts),), system_fonts=False, bundled_fonts=False, text=f"lines:{lines}")
    assert {sample_at(c, 0, i).text for i in range(10)} == {"hello"}
    only_cjk = tmp_path / "cjk.txt"
    only_cjk.write_text("漢字\n", encoding="utf-8")
    c2 = SynthConfig(fonts=(str(partial_fonts),), system_fonts=False, bundled_fonts=False, text=f"lines:{only_cjk}")
    with pytest.raises(DataError, match="no usable text"):
        sample_at(c2, 0, 0)


def test_list_fonts_sorted_and_holdout_split_deterministic():
    fonts = list_fonts([], system=False, bundled=True)
    assert fonts == sorted(fonts, key=lambda p: (p.stem.lower(), p.stem, str(p)))
    train, test = split_fonts(fonts, holdout=["dejavuserif*"])
    assert test and all(p.stem.startswith("DejaVuSerif") for p in test)
    assert set(train) | set(test) == set(fonts) and not set(train) & set(test)
    # by fraction: whole families move together, and a font's side never depends on the others
    tr, te = split_fonts(fonts, fraction=0.5, seed=3)
    sides = {}
    for p in fonts:
        sides.setdefault(p.stem.split("-")[0], set()).add(p in te)
    assert all(len(v) == 1 for v in sides.values())
    tr2, te2 = split_fonts(fonts[::2], fraction=0.5, seed=3)
    assert set(te2) == set(te) & set(fonts[::2])


def test_holdout_fonts_not_used_for_training(cfg):

    c = dataclasses.replace(cfg, holdout_fonts=("DejaVuSerif*", "*Mono*"))
    assert all("Serif" not in Path(sample_at(c, 2, i).font).stem for i in range(30))
    h = dataclasses.replace(c, font_split="holdout")
    used = {Path(sample_at(h, 2, i).font).stem for i in range(30)}
    assert used and all(n.startswith("DejaVuSerif") or "Mono" in n for n in used)
