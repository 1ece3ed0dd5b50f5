"""crnn.label.store: the files a labelling session writes, refused labels and crash repair."""

from __future__ import annotations

import pytest
from test_label_session import crops, snapshot, visible_files

from crnn.data.sources import open_source
from crnn.errors import CrnnError
from crnn.label.store import LABEL_PATTERN, LabelStore


def test_copies_are_named_so_the_pattern_reads_them_back(tmp_path):
    originals = crops(tmp_path / "in")
    store = LabelStore(tmp_path / "in", tmp_path / "out")
    for item, label in zip(store.items, ["HELLO", "HELLO", "A_2", "A_2", "x y", "HELLO"]):
        store.label(item, label)
    names = sorted(e.file for e in store.entries.values())
    assert names == ["A_2_1.png", "A_2_2.png", "HELLO.png", "HELLO_2.png", "HELLO_3.png", "x y.png"]
    assert (tmp_path / "out" / "label-pattern.txt").read_text().strip() == LABEL_PATTERN
    src = open_source(tmp_path / "out", LABEL_PATTERN)
    assert sorted(r.label for r in src.records) == ["A_2", "A_2", "HELLO", "HELLO", "HELLO", "x y"]
    for e in store.entries.values():
        assert (tmp_path / "out" / e.file).read_bytes() == originals[e.item]
    assert snapshot(tmp_path / "in") == originals


def test_refused_labels_and_crash_repair(tmp_path):
    crops(tmp_path / "in")
    store = LabelStore(tmp_path / "in", tmp_path / "out")
    item = store.items[0]
    for bad, why in (("", "empty"), ("   ", "empty"), (" A", "space"), ("a/b", "'/'"), (".x", "hidden"),
                     ("A\tB", "control")):
        with pytest.raises(CrnnError, match=why):
            store.label(item, bad)
    assert not store.entries and visible_files(tmp_path / "out") == {"label-pattern.txt"}
    store.label(item, "AB")
    (tmp_path / "out" / "AB.png").unlink()  # as if killed after the record was written, before the copy
    again = LabelStore(tmp_path / "in", tmp_path / "out")
    assert (tmp_path / "out" / "AB.png").read_bytes() == (tmp_path / "in" / item).read_bytes()
    assert again.entries[item].label == "AB"
    with pytest.raises(CrnnError, match="--format copies"):
        LabelStore(tmp_path / "in", tmp_path / "out", "tsv")
    with pytest.raises(CrnnError, match="must not be the image folder"):
        LabelStore(tmp_path / "in", tmp_path / "in")
