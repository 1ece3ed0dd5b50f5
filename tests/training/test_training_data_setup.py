"""crnn.training.data_setup: what training keeps, skips and reports of its data, and the validation split."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import error_line, make_toy_set, one_line_per_file, render_text
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.data.dataset import TextLineDataset
from crnn.training.data_setup import split_validation
from crnn.training.loop import train

CHARSET = "-7ABx"

TINY = ["data.height=32", "model.rnn_hidden=16", "train.batch_size=16", "train.log_every=1000", "augment.enabled=false"]


def tiny_config(*extra: str) -> Config:
    return apply_overrides(Config(), TINY + ["train.epochs=1", "data.val_fraction=0", *extra])


def test_training_skips_bad_samples_and_explains_too_long_labels(tmp_path, monkeypatch):
    monkeypatch.setattr("crnn.training.loop._write_curves", lambda run: None)  # curves.png: seconds, not tested
    monkeypatch.setattr("crnn.training.assemble.BIG_SOURCE", 50)  # announce this set as if it were large
    data = tmp_path / "d"
    labels = make_toy_set(data, 48, seed=3)
    render_text("A").crop((0, 0, 16, 32)).save(data / "narrow.png")  # 16 px -> 4 CTC frames
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    render_text("AZ").save(data / "z.png")
    Image.new("L", (1, 1), 255).save(data / "dot.png")
    Image.new("L", (20_000, 20), 255).save(data / "long.png")
    extra = ["narrow.png\tABABAB7", "broken.png\tAB", "z.png\tAZ", "dot.png\tA", "long.png\tABx", "gone.png\tA"]
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    messages: list[str] = []
    res = train(tiny_config(f"data.charset={CHARSET}"), data, tmp_path / "run", progress=False,
                log=messages.append)
    text = "\n".join(messages)
    assert f"49 usable samples of {len(labels) + 6}, 5 skipped" in text, text
    announced = [m for m in messages if "images into memory first" in m]
    want = f"{data / 'labels.tsv'}: decoding {len(labels) + 5} images"  # gone.png is skipped while listing
    assert len(announced) == 1 and announced[0].startswith(want), announced
    assert messages.index(announced[0]) < next(i for i, m in enumerate(messages) if "usable samples of" in m)
    one_line_per_file(text, [str(data / "narrow.png"), str(data / "broken.png"), str(data / "z.png"),
                             str(data / "long.png"), f"{data / 'labels.tsv'}:{len(labels) + 6}"])
    long = next(ln for ln in text.splitlines() if "long.png" in ln)  # never squeezed: skipped, and said why
    assert "wider than data.max_width after resizing (32000 px at height 32, limit 4096" in long
    narrow = next(ln for ln in text.splitlines() if "narrow.png" in ln)
    assert "label too long for the image: 7 characters need 7 CTC frames but the image gives only 4" in narrow
    assert "characters outside the charset: 'Z' x1" in text
    row = res.history[-1]
    assert np.isfinite(row["train_loss"]) and row["train_loss"] > 0


def test_training_stops_when_every_label_is_too_long(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    for i in range(2):
        render_text("A").crop((0, 0, 12, 32)).save(data / f"{i}.png")
    (data / "labels.tsv").write_text("0.png\tABABAB\n1.png\t7x7x7x7\n", encoding="utf-8")
    argv = ["train", "--train", str(data), "--out", str(tmp_path / "r"), "--no-progress", "--epochs", "1"]
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    assert "no usable sample (2 skipped: 2 label too long for the image)" in line
    assert not (tmp_path / "r" / "last.pt").exists()


def test_training_skips_and_reports_images_over_max_width(tmp_path, capsys):
    """Training never squeezes either: an image wider than data.max_width is skipped and named."""
    from conftest import make_toy_set, render_text

    make_toy_set(tmp_path / "d", 30, seed=3)
    render_text("AB" * 30).save(tmp_path / "d" / "wide.png")
    with open(tmp_path / "d" / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("wide.png\t" + "AB" * 30 + "\n")
    assert main(["train", "--train", str(tmp_path / "d"), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--set", "data.max_width=300", "--set", "data.height=32", "--no-progress"]) in (0, 3)  # 3: plateau
    out = capsys.readouterr()
    text = out.out + out.err
    assert "wide.png: wider than data.max_width after resizing" in text
    assert "limit 300" in text


def test_validation_split_and_extend_carry_names():
    arrays = [np.zeros((32, 8 + i), np.uint8) for i in range(20)]
    ds = TextLineDataset(arrays, [f"L{i}" for i in range(20)], [[1]] * 20, [f"n{i}" for i in range(20)])
    tr, val = split_validation(ds, 0.25, 100, seed=0)
    assert len(tr) == 15 and len(val) == 5
    assert [f"n{lab[1:]}" for lab in tr.labels] == tr.names and [f"n{lab[1:]}" for lab in val.labels] == val.names
    both = tr.extend(val)
    assert sorted(both.names) == sorted(ds.names)
    assert tr.extend(TextLineDataset(arrays[:1], ["x"], [[1]])).names is None
