"""crnn.data.sources: folders, label patterns, labels files and what each skips and why."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import _png, error_line, render_text
from crnn.charset import Charset, normalize
from crnn.cli import main
from crnn.data.sources import open_source
from crnn.errors import DataError


def test_folder_labels_from_stems_and_subfolders(tmp_path):
    render_text("HELLO").save(tmp_path / "HELLO.png")
    (tmp_path / "sub").mkdir()
    render_text("Fire-ball").save(tmp_path / "sub" / "Fire-ball.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path)
    assert sorted(r.label for r in src.records) == ["Fire-ball", "HELLO"]
    assert len(src.skipped) == 1 and "not an image" in src.skipped[0][1]


def test_label_pattern(tmp_path):
    render_text("AB").save(tmp_path / "AB_1.png")
    render_text("AB").save(tmp_path / "AB_2.png")
    render_text("Q").save(tmp_path / "odd.png")
    src = open_source(tmp_path, r"(.+)_\d+")
    assert [r.label for r in src.records] == ["AB", "AB"]
    assert "label-pattern" in src.skipped[0][1]
    with pytest.raises(DataError, match="group"):
        open_source(tmp_path, r".+")


def test_labels_file(tmp_path):
    (tmp_path / "img").mkdir()
    render_text("one").save(tmp_path / "img" / "a.png")
    render_text("two words").save(tmp_path / "img" / "b.png")
    (tmp_path / "outside.png").write_bytes(_png(render_text("x")))
    root = tmp_path / "data"
    root.mkdir()
    (root / "img").symlink_to(tmp_path / "img")
    (root / "labels.tsv").write_text(
        "img/a.png\tone\textra column\n"
        "img/b.png\ttwo words\n"
        "img/missing.png\tgone\n"
        "../outside.png\tx\n"
        "img/a.png\n"
        "img/a.png\t   \n", encoding="utf-8")
    src = open_source(root)  # the folder's labels.tsv is used
    assert [r.label for r in src.records] == ["one", "two words"]
    reasons = " | ".join(r for _, r in src.skipped)
    assert "file not found" in reasons and "outside the data folder" in reasons
    assert "no TAB" in reasons and "empty label" in reasons
    assert all(":" in name for name, _ in src.skipped)  # file:line


def test_labels_file_bad_encoding_names_the_line(tmp_path):
    (tmp_path / "gt.txt").write_bytes(b"a.png\tok\nb.png\t\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"gt.txt: line 2 .*UTF-8"):
        open_source(tmp_path / "gt.txt")


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="empty"):
        open_source(tmp_path)
    with pytest.raises(DataError, match="no such file"):
        open_source(tmp_path / "nope")


def test_labels_file_problems_are_skipped_per_line(tmp_path, capsys):
    data = tmp_path / "d"
    (data / "img").mkdir(parents=True)
    for text in ("AB", "B7", "x"):
        render_text(text).save(data / "img" / f"{text}.png")
    (tmp_path / "secret.png").write_bytes(_png(render_text("A")))
    lines = [
        "img/AB.png\tAB",                       # 1 good
        "img/B7.png",                           # 2 no label column
        "img/nope.png\tA",                      # 3 file does not exist
        "../secret.png\tA",                     # 4 outside the data folder
        f"{tmp_path / 'secret.png'}\tA",        # 5 absolute path
        "img/x.png\t   ",                       # 6 empty label
        "img/x.png\tA\x07B",                    # 7 control character in the label
        "img/" + "y" * 5000 + ".png\tA",        # 8 name too long for the file system
        "\tA",                                  # 9 empty path
        "",                                     # blank line: ignored
        "img/B7.png\tB\x0b7",                   # 11 vertical tab: one line (not split), a control character
        "img/x.png\tx\u2028x",                  # 12 U+2028 inside a label does not split the line
    ]
    (data / "labels.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    f = data / "labels.tsv"
    expect = {2: "no TAB between path and label", 3: "file not found: img/nope.png",
              4: "path outside the data folder: ../secret.png", 5: "path outside the data folder",
              6: "empty label", 7: "label contains a control or undecodable character: \\x07",
              8: "cannot access the file", 9: "empty path", 11: "control or undecodable character: \\x0b"}
    for lineno, reason in expect.items():
        hit = [ln for ln in out.splitlines() if f"{f}:{lineno}: " in ln]
        assert len(hit) == 1 and reason in hit[0], (lineno, reason, out)
    assert "2 usable samples of 11, 9 skipped" in out
    assert not any(f"{f}:{n}:" in out for n in (1, 10, 12))


def test_labels_file_with_bad_encoding_names_file_and_line(tmp_path, model_file, capsys):
    data = tmp_path / "d"
    data.mkdir()
    render_text("AB").save(data / "a.png")
    (data / "gt.txt").write_bytes(b"a.png\tAB\na.png\tcaf\xe9\n")  # Latin-1, not UTF-8
    for argv in (["prepare", str(data), str(tmp_path / "o.lmdb")],
                 ["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress"],
                 ["eval", str(model_file), str(data / "gt.txt")]):
        capsys.readouterr()
        assert main(argv) == 2
        line = error_line(capsys.readouterr().err)
        assert f"{data / 'gt.txt'}: line 2 is not valid UTF-8" in line


def test_labels_file_with_every_line_bad_stops_before_training(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    (data / "labels.tsv").write_text("a.png\tA\nb.png\n../c.png\tC\n", encoding="utf-8")
    assert main(["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "labels.tsv: no usable sample (3 skipped: " in line
    assert "file not found" in line and "no TAB" in line and "outside the data folder" in line


def test_undecodable_and_control_characters_in_file_names(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    render_text("AB").save(data / "AB.png")
    render_text("A").save(os.fsdecode(os.fsencode(str(data)) + b"/A\xff.png"))  # not UTF-8
    render_text("B").save(data / "B\nB.png")                                    # a newline in the name
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    assert "A\\udcff.png: label contains a control or undecodable character" in out
    assert "B\\nB.png: label contains a control or undecodable character: \\n" in out
    assert "1 usable samples of 3, 2 skipped" in out
    json.loads((tmp_path / "o.lmdb" / "report.json").read_text(encoding="utf-8"))


def test_hidden_special_and_escaping_files_are_counted_with_a_reason(tmp_path, capsys):
    import os

    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    render_text("AB").save(data / "AB.png")
    render_text("BA").save(data / ".BA.png")                     # hidden file
    (data / ".cache").mkdir()
    render_text("7x").save(data / ".cache" / "7x.png")           # inside a hidden folder
    os.mkfifo(data / "x7.png")                                   # a FIFO: reading it would block forever
    secret = tmp_path / "secret.png"
    render_text("AA").save(secret)
    (data / "sub" / "AA.png").symlink_to(secret)                 # leads out of the data folder
    (data / "BB.png").symlink_to(data / "AB.png")                # a link to a sibling: fine
    (data / "outside").symlink_to(tmp_path, target_is_directory=True)
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    assert "2 usable samples of 7, 5 skipped" in out, out
    for name, reason in ((".BA.png", "hidden file (its name starts with '.')"),
                         (".cache", "hidden folder (its name starts with '.'), not read"),
                         ("x7.png", "not a regular file (a FIFO)"),
                         ("sub/AA.png", f"symlink points outside the folder (to {secret})"),
                         ("outside", "symlinked folder, not followed")):
        assert f"{data / name}: {reason}" in out, (name, out)


def test_labels_file_symlink_out_of_the_folder_and_an_image_named_twice(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for text in ("AB", "BA"):
        render_text(text).save(data / f"{text}.png")
    (data / "pw.png").symlink_to("/etc/passwd")
    (data / "labels.tsv").write_text("AB.png\tAB\nBA.png\tBA\nAB.png\tBA\n./BA.png\tBA\npw.png\tAB\n",
                                     encoding="utf-8")
    assert main(["prepare", str(data), str(tmp_path / "o.lmdb")]) == 0
    out = capsys.readouterr().out
    tsv = data / "labels.tsv"
    assert "2 usable samples of 5, 3 skipped" in out, out
    assert f"{tsv}:3: image named twice (line 1 is used; label 'AB' there, 'BA' here): AB.png" in out
    assert f"{tsv}:4: image named twice (line 2 is used; the same label): ./BA.png" in out
    assert f"{tsv}:5: symlink points outside the folder (to /etc/passwd): pw.png" in out


# Characters that make Unicode normalisation interesting: combining marks, letters they compose with,
# Hangul jamo (which compose with each other), singletons NFC replaces (ANGSTROM SIGN, KELVIN SIGN), a
# mark that NFC splits in two (U+0344), precomposed letters, and characters some parsers treat as line breaks.
TRICKY = ("e\u0301zxAa\u00e9\u0301\u0323\u0308\u030a\u1100\u1161\u11a8\uac00\u212b\u212a\u0344\u00c5"
          "\u0915\u093c\u0958\u2028-_ \u00a0")

label_chars = st.one_of(st.sampled_from(TRICKY),
                        st.characters(blacklist_categories=("Cc", "Cs")))

labels = st.text(label_chars, min_size=1, max_size=12)

LINE_BREAK = re.compile(r"\r\n|\r|\n")

no_breaks = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))

path_parts = st.sampled_from(["img/a.png", "img/b.png", "./img/a.png", "img/../img/b.png", "../a.png", "/etc/passwd",
                              "img", "img/", "missing.png", "", " ", "y" * 300, "img/a.png\x00", "\u2028"])

lines = st.one_of(
    st.text(no_breaks, max_size=30),                                                     # anything at all
    st.tuples(path_parts, st.text(no_breaks, max_size=10)).map("\t".join),              # path TAB label
    st.tuples(path_parts, labels, st.text(no_breaks, max_size=5)).map("\t".join),       # an extra column
    st.sampled_from(["img/a.png\tAB", "img/b.png\t  x y ", "", "   ", "\t", "#comment"]),
)


@pytest.fixture(scope="module")
def label_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    (root / "img").mkdir()
    Image.new("L", (20, 10), 255).save(root / "img" / "a.png")
    Image.new("L", (20, 10), 255).save(root / "img" / "b.png")
    return root


def _check_parse(root: Path, file: Path, text: str) -> None:
    nonblank = [n for n, ln in enumerate(LINE_BREAK.split(text), 1) if ln.strip()]
    try:
        src = open_source(file)
    except DataError as e:  # only when no line gives a usable record
        msg = str(e)
        assert msg.startswith(str(file)) and "\n" not in msg and "\r" not in msg
        assert "empty" in msg or "no usable sample" in msg or "not valid UTF-8" in msg
        return
    skipped_lines = [int(name.rsplit(":", 1)[1]) for name, _ in src.skipped]
    assert len(src.records) + len(src.skipped) == len(nonblank)  # each non-blank line: a record or a skip
    assert len(set(skipped_lines)) == len(skipped_lines) and set(skipped_lines) <= set(nonblank)
    for name, reason in src.skipped:
        assert name.startswith(f"{file}:") and reason.strip()
        assert not any(ch in reason for ch in "\r\n\x85\u2028\u2029")  # one line, whatever the input
    for rec in src.records:
        assert rec.path is not None and rec.path.is_file()
        assert rec.path.resolve().is_relative_to(root.resolve())
        assert rec.label == normalize(rec.label) and rec.label.strip() == rec.label and rec.label
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in rec.label)
        Charset.from_labels([rec.label])  # any accepted label can be in a charset


@settings(max_examples=120, deadline=None)
@given(st.lists(lines, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_labels_file_lines_are_records_or_reasoned_skips(label_root, body, newline):
    text = newline.join(body)
    file = label_root / "labels.tsv"
    file.write_text(text, encoding="utf-8", newline="")
    _check_parse(label_root, file, text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_labels_file_of_arbitrary_bytes_never_crashes(label_root, raw):
    file = label_root / "gt.txt"
    file.write_bytes(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        with pytest.raises(DataError, match=r"line \d+ is not valid UTF-8"):
            open_source(file)
        return
    _check_parse(label_root, file, text)
