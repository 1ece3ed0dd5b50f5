"""The decoded-image store that the processes of a ``--nproc N`` run share."""

import shutil

import numpy as np
import pytest

from crnn.charset import Charset
from crnn.data.decoded_store import StoreWriter, open_stores
from crnn.errors import CrnnError


def test_arrays_labels_and_names_come_back_as_read_only_views_that_outlive_the_folder(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (32, w), dtype=np.uint8) for w in (7, 50, 1)]
    arrays.append(rng.integers(0, 256, (32, 9, 3), dtype=np.uint8))  # an RGB model's input
    labels, names = ["ab", "b a", "a", "ba"], ["x.png", "y.png", "z.png", "w.png"]
    with StoreWriter(tmp_path / "s") as w:
        for a, label, name in zip(arrays, labels, names):
            w.add(a, label, name)
    cs = Charset("ab ")
    ds = open_stores([tmp_path / "s"], cs)
    shutil.rmtree(tmp_path / "s")  # what the run does once every process has it open
    assert len(ds) == 4 and ds.labels == labels and ds.names == names
    assert ds.targets == [cs.encode(label) for label in labels]
    assert ds.widths.tolist() == [7, 50, 1, 9]
    for got, want in zip(ds.arrays, arrays):
        assert got.shape == want.shape and np.array_equal(got, want)
        assert not got.flags.writeable and not got.flags.owndata  # a view into the mapped file, not a copy
    with pytest.raises(ValueError):
        ds.arrays[0][0, 0] = 1


def test_a_store_that_cannot_be_written_is_one_line_naming_tmpdir(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(CrnnError, match="cannot write the decoded training images.*TMPDIR"):
        StoreWriter(tmp_path / "taken" / "s")


def test_an_empty_store_is_an_empty_dataset(tmp_path):
    with StoreWriter(tmp_path / "s"):
        pass
    assert len(open_stores([tmp_path / "s"], Charset("ab"))) == 0


def test_shares_of_one_source_come_back_in_the_records_order(tmp_path):
    for share, positions in ((0, [0, 2, 4]), (1, [1, 3])):
        with StoreWriter(tmp_path / f"s{share}") as w:
            for p in positions:
                w.add(np.full((2, 3), p, np.uint8), "ab"[p % 2], f"{p}.png", position=p)
    ds = open_stores([tmp_path / "s0", tmp_path / "s1"], Charset("ab"))
    assert ds.names == [f"{p}.png" for p in range(5)] and ds.labels == ["a", "b", "a", "b", "a"]
    assert [int(a[0, 0]) for a in ds.arrays] == [0, 1, 2, 3, 4]
