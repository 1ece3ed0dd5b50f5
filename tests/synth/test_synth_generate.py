"""crnn.synth: determinism, glyph coverage, regex text, folder/LMDB output, streams, configs."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from crnn.data.lmdb_store import LmdbReader
from crnn.errors import ConfigError, DataError
from crnn.synth import (
    RegexGenerator,
    SynthConfig,
    SynthStream,
    bundled_fonts,
    list_fonts,
    load_synth_config,
    render,
    sample,
    sample_at,
    sample_with_info,
    split_fonts,
    synthesize,
)
from crnn.synth import fonts as fonts_mod
from crnn.synth import generate as gen_mod
from crnn.synth.fonts import bundled_font_dir, font_codepoints, load_font
from crnn.synth.render import luminance, pick_colours

REPO = Path(__file__).resolve().parents[1]
WORDS = "apple banana cherry river mountain quiet window yellow garden simple number letter table\n"


def cmap_of(path: str) -> set[int]:
    """Read the cmap afresh (not through the package's cache) so the check is independent."""
    with TTFont(path, fontNumber=0) as tt:
        return set(tt.getBestCmap())


@pytest.fixture(scope="module")
def words_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("words") / "words.txt"
    p.write_text("\n".join(WORDS.split()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def cfg(words_file) -> SynthConfig:
    """Independent of installed system fonts and of wordfreq."""
    return SynthConfig(system_fonts=False, text=f"words:{words_file}", punct_prob=0.3, pattern_prob=0.2)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def clear_caches() -> None:
    gen_mod._context.cache_clear()
    gen_mod.font_usable.cache_clear()
    font_codepoints.cache_clear()
    load_font.cache_clear()
    fonts_mod._has_ink.cache_clear()


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_bytes_and_labels_different_seed_differs(cfg):
    run1 = [sample_at(cfg, 7, i) for i in range(12)]
    clear_caches()  # the result must not depend on what was cached before
    run2 = [sample_at(cfg, 7, i) for i in range(12)]
    other = [sample_at(cfg, 8, i) for i in range(12)]
    assert [s.text for s in run1] == [s.text for s in run2]
    assert [png(s.image) for s in run1] == [png(s.image) for s in run2]
    assert [png(s.image) for s in run1] != [png(s.image) for s in other]
    assert len({png(s.image) for s in run1}) == 12  # samples within a seed differ too


def test_sample_uses_only_the_rng_passed(cfg):
    a = sample(np.random.default_rng(3), cfg)
    np.random.seed(0)  # global state must play no part
    b = sample(np.random.default_rng(3), cfg)
    assert a[1] == b[1] and png(a[0]) == png(b[0])


def test_default_words_source_is_deterministic():
    pytest.importorskip("wordfreq")
    c = SynthConfig(system_fonts=False, channels=3)
    a = [sample_at(c, 1, i) for i in range(4)]
    b = [sample_at(c, 1, i) for i in range(4)]
    assert [s.text for s in a] == [s.text for s in b]
    assert [png(s.image) for s in a] == [png(s.image) for s in b]
    assert all(s.text.strip() == s.text and s.text for s in a)


# --- CAPTCHA-like glyph distortion ------------------------------------------------------------


def test_glyph_distortion_is_deterministic_and_differs_from_rigid_lines(cfg):
    warped = dataclasses.replace(cfg, glyph_warp_prob=1.0)
    run1 = [sample_at(warped, 5, i) for i in range(8)]
    clear_caches()
    run2 = [sample_at(warped, 5, i) for i in range(8)]
    assert [(s.text, png(s.image)) for s in run1] == [(s.text, png(s.image)) for s in run2]
    rigid = [sample_at(cfg, 5, i) for i in range(8)]
    assert all(a.image.height == cfg.height for a in run1)
    assert [png(a.image) for a in run1] != [png(b.image) for b in rigid]
    # a config that never distorts draws nothing for it: rigid datasets keep their bytes
    assert [png(s.image) for s in rigid] == [png(s.image) for s in
                                              (sample_at(dataclasses.replace(cfg, glyph_rotation=5.0), 5, i)
                                               for i in range(8))]


def _ink_gaps(mask: Image.Image) -> list[int]:
    """Widths of the empty column runs between the first and last inked column."""
    cols = (np.asarray(mask) > 64).any(axis=0)
    idx = np.flatnonzero(cols)
    gaps, run = [], 0
    for c in cols[idx[0]:idx[-1] + 1]:
        if c:
            if run:
                gaps.append(run)
            run = 0
        else:
            run += 1
    return gaps


@pytest.mark.parametrize("squash", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(12))
def test_glyph_word_spaces_stay_wider_than_letter_gaps(seed, squash):
    from crnn.synth.glyphs import glyph_mask

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0, glyph_clutter=False, glyph_squash=squash)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 40)
    rng = np.random.default_rng(seed)
    mask = glyph_mask("cab dig", font, rng, c)
    gaps = sorted(_ink_gaps(mask), reverse=True)
    assert gaps, "the word space left no empty columns"
    # one gap (the space) stands clearly above every gap between letters of a word
    assert len(gaps) == 1 or gaps[0] >= gaps[1] + 5


@pytest.mark.parametrize("squash", [False, True])
def test_every_glyph_leaves_ink_after_distortion(squash):
    from crnn.synth.glyphs import _glyph

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 32)
    rng = np.random.default_rng(0)
    for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,:;!?'\"()-/&$%#@+*=_":
        assert np.asarray(_glyph(ch, font, rng, c, squash)).max() > 64, ch


def _ink_rows(im: Image.Image) -> tuple[int, int]:
    rows = np.flatnonzero((np.asarray(im) > 64).any(axis=1))
    return int(rows[0]), int(rows[-1])


def test_squashed_glyphs_keep_their_upright_box_and_place_on_the_line():
    """Squashed as the captcha package does: the rotated ink is fitted back into the upright ink box, so
    a glyph is never wider than upright, and it stays where it was on the line: a lower-case ``o`` keeps
    its x-height (it must not turn into an ``O``) and a comma stays low."""
    from crnn.synth.glyphs import _glyph

    c = SynthConfig(system_fonts=False, glyph_warp_prob=1.0, glyph_rotation=30.0)
    font = load_font(str(bundled_font_dir() / "DejaVuSans.ttf"), 40)
    flat = dataclasses.replace(c, glyph_rotation=0.0, glyph_warp=0.0)
    upright = {ch: _glyph(ch, font, np.random.default_rng(0), flat, True) for ch in "oO,"}
    tilted = _glyph("O", font, np.random.default_rng(3), c, False)
    for seed in range(10):
        glyphs = {ch: _glyph(ch, font, np.random.default_rng(seed), c, True) for ch in "oO,"}
        for ch, g in glyphs.items():
            assert g.size == upright[ch].size, ch  # same box as the undistorted glyph, whatever the angle
        o_top, o_bottom = _ink_rows(glyphs["o"])
        cap_top, cap_bottom = _ink_rows(glyphs["O"])
        assert o_top > cap_top + 5 and abs(o_bottom - cap_bottom) <= 6
        assert _ink_rows(glyphs[","])[0] > o_bottom - 8
    assert tilted.size[0] > upright["O"].size[0]  # without squash a rotated glyph takes more room


def test_glyph_squash_is_deterministic_and_only_drawn_for_when_asked(cfg):
    warped = dataclasses.replace(cfg, glyph_warp_prob=1.0)
    squashed = dataclasses.replace(warped, glyph_squash=1.0)
    a = [png(sample_at(squashed, 9, i).image) for i in range(6)]
    clear_caches()
    assert a == [png(sample_at(squashed, 9, i).image) for i in range(6)]
    assert a != [png(sample_at(warped, 9, i).image) for i in range(6)]
    with pytest.raises(ConfigError, match="glyph_squash"):
        dataclasses.replace(cfg, glyph_squash=1.5)


# --- tight crops (as a text detector boxes the ink) -------------------------------------------


def _ink_box(img: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right gap, bottom gap) of the pixels far from the flat background's colour."""
    a = np.asarray(img.convert("L"), dtype=np.int16)
    bg = np.bincount(a.ravel()).argmax()
    ys, xs = np.nonzero(np.abs(a - bg) > 60)
    return xs.min(), ys.min(), a.shape[1] - 1 - xs.max(), a.shape[0] - 1 - ys.max()


def _clean(c: SynthConfig) -> SynthConfig:
    return dataclasses.replace(c, background_mix=(1.0, 0.0, 0.0), blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0,
                               rotation=0.0, shear=0.0, pad_x=(0.0, 0.0), pad_y=(0.0, 0.0))


def test_tight_crops_fill_the_height_where_rigid_lines_leave_room(tmp_path):
    lines = tmp_path / "x.txt"
    lines.write_text("ace\nmum\nvow\n", encoding="utf-8")  # no ascenders, no descenders
    base = _clean(SynthConfig(system_fonts=False, text=f"lines:{lines}"))
    tight = dataclasses.replace(base, tight_prob=1.0, tight_margin=(0.0, 0.0))
    rigid_gaps, tight_gaps = [], []
    for i in range(12):
        t = _ink_box(sample_at(tight, 4, i).image)
        assert max(t) <= 2, t  # the ink reaches every side (up to its anti-aliased rim)
        tight_gaps.append(t[1] + t[3])
        r = _ink_box(sample_at(base, 4, i).image)
        rigid_gaps.append(r[1] + r[3])
    # a rigid line keeps (part of) the room for ascenders and descenders, so x-height text sits smaller
    assert np.mean(rigid_gaps) > np.mean(tight_gaps) + 3


def test_tight_margin_bounds_the_room_around_the_ink(tmp_path):
    lines = tmp_path / "x.txt"
    lines.write_text("Kilo\n", encoding="utf-8")
    c = dataclasses.replace(_clean(SynthConfig(system_fonts=False, text=f"lines:{lines}", stretch=0.0)),
                            tight_prob=1.0, tight_margin=(0.1, 0.15))
    for i in range(10):
        img = sample_at(c, 1, i).image
        left, top, right, bottom = _ink_box(img)
        # margins are 0.1-0.15 font sizes per side around caps about 0.73 font sizes high, so each is
        # 10-16 % of the output height, give or take the anti-aliased rim
        for m in (left, top, right, bottom):
            assert 0.05 * img.height <= m <= 0.2 * img.height, (left, top, right, bottom, img.size)


def test_configs_without_tight_crops_keep_their_bytes(cfg):
    a = [png(sample_at(cfg, 6, i).image) for i in range(8)]
    b = [png(sample_at(dataclasses.replace(cfg, tight_margin=(0.2, 0.3)), 6, i).image) for i in range(8)]
    assert a == b
    c = [png(sample_at(dataclasses.replace(cfg, tight_prob=0.5), 6, i).image) for i in range(8)]
    assert a != c


# --- font balance -------------------------------------------------------------------------------------


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


def test_bad_font_balance_and_tight_settings_are_rejected():
    with pytest.raises(ConfigError, match="font_balance"):
        SynthConfig(font_balance="weight")
    with pytest.raises(ConfigError, match="tight_prob"):
        SynthConfig(tight_prob=1.5)
    with pytest.raises(ConfigError, match="tight_margin"):
        SynthConfig(tight_margin=(0.3, 0.1))


# --- fonts and glyph coverage -------------------------------------------------------------


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
    import dataclasses

    c = dataclasses.replace(cfg, holdout_fonts=("DejaVuSerif*", "*Mono*"))
    assert all("Serif" not in Path(sample_at(c, 2, i).font).stem for i in range(30))
    h = dataclasses.replace(c, font_split="holdout")
    used = {Path(sample_at(h, 2, i).font).stem for i in range(30)}
    assert used and all(n.startswith("DejaVuSerif") or "Mono" in n for n in used)


# --- regex text -------------------------------------------------------------------------------

PATTERNS = [
    r"\$\d{1,3}\.\d\d",
    r"\d{1,2}:[0-5]\d",
    r"[A-Z]{2,3}-?\d{2,4}",
    r"(19|20)\d\d-(0[1-9]|1[0-2])-[0-2]\d",
    r"(?:INV|PO)#[0-9A-F]{4,6}",
    r"[a-z]+( [a-z]+)*",
    r"\w{3}\s\w+?",
    r"x*y+z?",
    r"[^a-z0-9 ]{2}\.{,3}",
    r"a{3}b{2,}c{,2}",
    r"(ab|c(d|e)f)+",
    r"[\d\-_.]{1,5}",
    r"\D\W\S",
    r"^(?P<year>\d{4})$",
    r"[A-Z][a-z]{2,8} \d{1,2}(st|nd|rd|th)",
    r"\u20ac\d+,\d\d",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_generator_matches(pattern):
    gen = RegexGenerator(pattern)
    rng = np.random.default_rng(0)
    out = [gen(rng) for _ in range(150)]
    for s in out:
        assert re.fullmatch(pattern, s), (pattern, s)
    assert len(set(out)) > 1


@pytest.mark.parametrize("pattern", [r"(a)\1", r"a(?=b)", r"\bword", r"(ab", r"a)", r"[z-a]", r"*a", r"a**"])
def test_regex_generator_rejects_unsupported_or_invalid(pattern):
    with pytest.raises(ValueError):
        RegexGenerator(pattern)


def test_regex_text_source_and_charset_narrowing():
    c = SynthConfig(system_fonts=False, text=r"regex:[A-Z]{2}\d{3,5}", charset="ABC0123456789")
    for i in range(20):
        s = sample_at(c, 4, i)
        assert re.fullmatch(r"[A-C]{2}\d{3,5}", s.text)


# --- charset, height, channels ------------------------------------------------------------------


def test_charset_restriction_honoured(cfg):
    import dataclasses

    allowed = "abcdefghijklmnopqrstuvwxyz0123456789 "
    c = dataclasses.replace(cfg, charset=allowed)
    texts = [sample_at(c, 9, i).text for i in range(40)]
    assert all(set(t) <= set(allowed) for t in texts), texts
    # without the restriction the same source does emit other characters (the check can fail)
    free = [sample_at(cfg, 9, i).text for i in range(40)]
    assert any(not set(t) <= set(allowed) for t in free)


def test_output_height_and_mode(cfg):
    import dataclasses

    for height, channels, mode in ((32, 1, "L"), (48, 3, "RGB"), (20, 1, "L")):
        c = dataclasses.replace(cfg, height=height, channels=channels)
        for i in range(8):
            img = sample_at(c, 1, i).image
            assert img.height == height and img.mode == mode and img.width >= 1


def test_text_contrasts_with_background():
    c = SynthConfig(system_fonts=False, channels=3, min_contrast=90.0)
    rng = np.random.default_rng(0)
    for _ in range(400):
        amp = float(rng.uniform(0, 30))
        fg, bgs = pick_colours(rng, c, amp, 2)
        for bg in bgs:
            assert abs(luminance(fg) - luminance(bg)) >= 90.0 + amp - 1e-6


# --- writing datasets -----------------------------------------------------------------------------


def test_folder_output_consistent(cfg, tmp_path, monkeypatch):
    out = synthesize(tmp_path / "set", 10, cfg, seed=3)
    rows = (out / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 10
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"{i:06d}.png" for i in range(1, 11)]
    for i, row in enumerate(rows):
        name, label = row.split("\t")
        assert name == f"{i + 1:06d}.png"
        expected = sample_at(cfg, 3, i)
        assert label == expected.text
        with Image.open(out / name) as im:
            assert im.height == cfg.height
            assert png(im.convert("L")) == png(expected.image)
    with pytest.raises(FileExistsError):
        synthesize(out, 2, cfg, seed=3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    # the same set with worker processes (chunks kept small so both workers take part)
    monkeypatch.setattr(gen_mod, "CHUNK", 3)
    out2 = synthesize(tmp_path / "set2", 10, cfg, seed=3, workers=2)
    assert (out2 / "labels.tsv").read_bytes() == (out / "labels.tsv").read_bytes()
    assert all((out2 / f).read_bytes() == (out / f).read_bytes() for f in files)


def test_lmdb_output_readable(cfg, tmp_path):
    out = synthesize(tmp_path / "set.lmdb", 6, cfg, seed=5, fmt="lmdb")
    r = LmdbReader(out)
    assert len(r) == 6
    labels = [r.label(i) for i in range(6)]
    assert labels == [sample_at(cfg, 5, i).text for i in range(6)]
    for i in range(6):
        with Image.open(io.BytesIO(r.image_bytes(i))) as im:
            assert im.format == "PNG" and im.height == cfg.height
    assert r.meta["seed"] == 5 and r.meta["height"] == cfg.height
    assert set(r.meta["charset"]) == set("".join(labels))


# --- streams -------------------------------------------------------------------------------------


def test_stream_matches_dataset_and_resumes(cfg):
    stream = SynthStream(cfg, seed=3)
    first = [next(stream) for _ in range(5)]
    assert [t for _, t in first] == [sample_at(cfg, 3, i).text for i in range(5)]
    resumed = SynthStream(cfg, seed=3, start=2)
    assert png(next(resumed)[0]) == png(first[2][0])
    assert stream[4][1] == first[4][1]


def _label_only(image, label):
    return label


def test_stream_in_dataloader_workers_splits_without_overlap(cfg):
    torch = pytest.importorskip("torch")
    ds = SynthStream(cfg, seed=6).as_torch_dataset(transform=_label_only)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = []
    for label in loader:
        got.append(label)
        if len(got) == 8:
            break
    assert got == [sample_at(cfg, 6, i).text for i in range(8)]


# --- config files ---------------------------------------------------------------------------------


def test_load_synth_config(tmp_path, words_file):
    (tmp_path / "w.txt").write_text("alpha\nbeta\n", encoding="utf-8")
    p = tmp_path / "c.toml"
    p.write_text(
        '[synth]\nheight = 40\ntext = "words:w.txt"\ncase_mix = [1, 0, 0]\npad_x = [0.1, 0.2]\n'
        "punct_prob = 0\npattern_prob = 0\nsystem_fonts = false\n"
    )
    c = load_synth_config(p)
    assert c.height == 40 and c.text == f"words:{tmp_path / 'w.txt'}" and c.pad_x == (0.1, 0.2)
    hash(c)  # frozen and hashable
    assert SynthConfig(**c.to_dict()) == c
    for i in range(5):
        s = sample_at(c, 0, i)
        assert set(s.text.split(" ")) <= {"alpha", "beta"} and s.image.height == 40
    p.write_text("heigth = 40\n")
    with pytest.raises(ConfigError, match="did you mean 'height'"):
        load_synth_config(p)
    p.write_text("rotation = -1\n")
    with pytest.raises(ConfigError, match="rotation"):
        load_synth_config(p)


def test_example_config_loads():
    c = load_synth_config(REPO / "configs" / "synth_en.toml")
    assert c.height == 32 and c.holdout_fonts == ("DejaVuSerif*",)


# --- real captures: photographs and scans (crnn.synth.scene) -----------------------------------------

SCENE_OPTIONS = {"scene_prob": 1.0, "curve_prob": 1.0, "perspective_prob": 1.0, "lowres_prob": 1.0,
                 "binarize_prob": 1.0}


def test_configs_without_capture_looks_keep_their_bytes(cfg):
    """Every capture look is drawn only when its probability is above 0, so older datasets keep their bytes."""
    a = [png(sample_at(cfg, 6, i).image) for i in range(8)]
    b = [png(sample_at(dataclasses.replace(cfg, scene_min_contrast=60.0, outline_prob=1.0, shadow_prob=1.0,
                                           curve=0.9, perspective=0.9, lowres_height=(5, 6), speckle=0.3),
                       6, i).image) for i in range(8)]
    assert a == b


@pytest.mark.parametrize("option", sorted(SCENE_OPTIONS))
def test_each_capture_look_is_deterministic_changes_the_image_and_keeps_the_height(cfg, option):
    c = dataclasses.replace(cfg, **{option: 1.0})
    a = [sample_at(c, 3, i).image for i in range(6)]
    clear_caches()
    assert [png(x) for x in a] == [png(sample_at(c, 3, i).image) for i in range(6)]
    assert [png(x) for x in a] != [png(sample_at(cfg, 3, i).image) for i in range(6)]
    assert all(x.height == cfg.height and x.mode == "L" for x in a)


def test_binarised_lines_are_black_and_white_up_to_speckle(cfg):
    c = dataclasses.replace(cfg, binarize_prob=1.0, speckle=0.0, jpeg_prob=0.0)
    for i in range(6):
        a = np.asarray(sample_at(c, 2, i).image)
        assert set(np.unique(a).tolist()) <= {0, 255}


def test_scene_ink_keeps_its_least_contrast_against_the_background(tmp_path):
    """The ink's luma differs from the background's mean by at least scene_min_contrast: low, never zero."""
    from crnn.synth import scene

    c = SynthConfig(system_fonts=False, scene_min_contrast=40.0, shadow_prob=0.0, outline_prob=0.0)
    mask = Image.new("L", (120, 32), 0)
    mask.paste(255, (20, 8, 100, 24))
    for seed in range(20):
        rng = np.random.default_rng(seed)
        img = np.asarray(scene.compose_scene(mask, rng, c).convert("L"), dtype=np.float64)
        ink = img[10:22, 25:95].mean()
        assert img.shape == (32, 120)
        assert ink >= 0 and abs(ink - np.median(img[:, :15])) > 10  # the text is visible against its surround


def test_curve_and_perspective_keep_every_bit_of_ink():
    from crnn.synth import scene

    mask = Image.new("L", (200, 40), 0)
    mask.paste(255, (10, 10, 190, 30))
    total = np.asarray(mask, dtype=np.int64).sum()
    for seed in range(10):
        bent = np.asarray(scene.curve(mask, np.random.default_rng(seed), 0.3), dtype=np.int64)
        assert bent.sum() == total and bent.shape[0] > 40  # columns move by whole pixels: nothing is cut off
        seen = np.asarray(scene.perspective(mask, np.random.default_rng(seed), 0.3), dtype=np.int64)
        assert seen.sum() > 0.3 * total  # the ink is there, and the canvas grew to hold all of it:
        assert max(seen[0].max(), seen[-1].max(), seen[:, 0].max(), seen[:, -1].max()) < 128  # no edge cut


def test_bad_capture_settings_are_rejected(cfg):
    for key, value in (("scene_prob", 1.5), ("curve", -1.0), ("scene_min_contrast", 500.0),
                       ("lowres_height", (30, 10)), ("speckle", 2.0)):
        with pytest.raises(ConfigError, match=key):
            dataclasses.replace(cfg, **{key: value})
