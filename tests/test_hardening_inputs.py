"""Settings and command-line values that used to end in a traceback (or the OOM killer): one line each.

Every case goes through ``crnn.cli.main``; RELIABILITY.md tabulates them (issue 13).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import render_text
from crnn.cli import main

CHARSET = "-7ABx"


def one_error_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


# `model_file` (an untrained model over the toy alphabet) is in conftest.py


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    for text in ("AB", "7x", "BA"):
        render_text(text).save(root / f"{text}.png")
    return root


# ------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("setting, key", [
    ("data.height=100000", "data.height"), ("train.batch_size=1000000", "train.batch_size"),
    ("model.rnn_hidden=3000000", "model.rnn_hidden"), ("model.rnn_layers=100", "model.rnn_layers"),
    ("model.channels=16,32,100000", "model.channels"), ("data.max_width=10000000", "data.max_width"),
    ("data.synth_epoch_size=1000000000", "data.synth_epoch_size"), ("data.max_pixels=100000000000", "data.max_pixels"),
    ("data.workers=100000", "data.workers"), ("data.max_val=100000000", "data.max_val"),
    ("train.lr=inf", "train.lr"), ("train.lr=nan", "train.lr"), ("train.weight_decay=-inf", "train.weight_decay"),
    ("train.checkpoint_every=inf", "train.checkpoint_every"), ("augment.noise_std=nan", "augment.noise_std"),
    ("train.grad_clip=inf", "train.grad_clip"),
])
def test_huge_or_non_finite_settings_stop_before_any_data_is_read(setting, key, tmp_path, capsys):
    # The data does not exist: the setting must be named first, in one line, and nothing written.
    code = main(["train", "--train", str(tmp_path / "no-such-data"), "--out", str(tmp_path / "run"),
                 "--set", setting, "--no-progress"])
    err = one_error_line(capsys.readouterr().err)
    assert code == 2 and err.startswith(f"error: {key} must be"), err
    assert not (tmp_path / "run").exists()


def test_lr_flag_inf_is_refused(tmp_path, capsys):
    assert main(["train", "--train", str(tmp_path / "x"), "--out", str(tmp_path / "run"), "--lr", "inf"]) == 2
    assert "train.lr must be a finite number" in one_error_line(capsys.readouterr().err)


def test_config_file_not_utf8_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(b"[train]\nlr = 0.001\nname = \"\xff\xfe\"\n")
    assert main(["train", "--train", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(cfg)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(cfg) in err and "line 3 is not valid UTF-8" in err


# ------------------------------------------------------------------------------------------- predict / eval


@pytest.mark.parametrize("command", ["predict", "eval"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_batch_size_below_one_is_one_line(command, value, model_file, images, capsys):
    assert main([command, str(model_file), str(images), "--batch-size", value]) == 2
    assert f"--batch-size must be at least 1, got {value}" in one_error_line(capsys.readouterr().err)


def test_empty_lexicon_is_one_line(model_file, images, tmp_path, capsys):
    empty = tmp_path / "words.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["predict", str(model_file), str(images), "--lexicon", str(empty)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert str(empty) in err and "no word" in err
    unusable = tmp_path / "other.txt"
    unusable.write_text("hello\nworld\n", encoding="utf-8")  # no word fits the charset -7ABx
    assert main(["eval", str(model_file), str(images), "--lexicon", str(unusable)]) == 2
    assert "all 2 words have characters the model cannot output" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["predict", "eval", "visualize"])
@pytest.mark.parametrize("device, says", [("banana", "is not a device name"), ("cuda:99", "CUDA")])
def test_unusable_device_is_one_line(command, device, says, model_file, images, tmp_path, capsys):
    extra = ["--out", str(tmp_path / "viz")] if command == "visualize" else []
    assert main([command, str(model_file), str(images), "--device", device, *extra]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert says in err and repr(device) in err


def test_cuda_on_a_machine_without_it_is_one_line(model_file, images, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["predict", str(model_file), str(images), "--device", "cuda"]) == 2
    assert "CUDA is not available on this machine" in one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def onnx_file(model_file, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "m.onnx"
    assert main(["export", str(model_file), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_eval_runs_an_onnx_file_like_its_checkpoint(onnx_file, model_file, images, capsys):
    import json

    assert main(["eval", str(model_file), str(images), "--json"]) == 0
    torch_summary = json.loads(capsys.readouterr().out)
    assert main(["eval", str(onnx_file), str(images), "--json"]) == 0
    onnx_summary = json.loads(capsys.readouterr().out)
    assert onnx_summary["samples"] == torch_summary["samples"] == 3
    assert onnx_summary["word_accuracy"] == torch_summary["word_accuracy"]
    assert onnx_summary["cer"] == pytest.approx(torch_summary["cer"])
    assert [e["pred"] for e in onnx_summary["worst_errors"]] == [e["pred"] for e in torch_summary["worst_errors"]]


def test_visualize_and_eval_report_say_they_need_the_checkpoint(onnx_file, images, tmp_path, capsys):
    assert main(["visualize", str(onnx_file), str(images), "--out", str(tmp_path / "viz")]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "is an exported ONNX model, not a checkpoint" in err and "truncated" not in err
    renamed = tmp_path / "model.pt"  # the same file under a checkpoint's name
    renamed.write_bytes(onnx_file.read_bytes())
    assert main(["visualize", str(renamed), str(images), "--out", str(tmp_path / "viz")]) == 2
    assert "is an exported ONNX model" in one_error_line(capsys.readouterr().err)
    assert main(["eval", str(onnx_file), str(images), "--report", str(tmp_path / "rep")]) == 2
    assert "--report draws alignments with PyTorch" in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------ nothing dropped in silence


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


def test_lmdb_with_fewer_samples_than_num_samples_is_an_error(model_file, tmp_path, capsys):
    import lmdb

    img = tmp_path / "AB.png"
    render_text("AB").save(img)
    db = tmp_path / "cut.lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"100")
        for i in range(1, 51):
            txn.put(b"image-%09d" % i, img.read_bytes())
            txn.put(b"label-%09d" % i, b"AB")
    env.close()
    for command in (["eval", str(model_file), str(db)], ["prepare", str(db), str(tmp_path / "o.lmdb")]):
        assert main(command) == 2
        err = one_error_line(capsys.readouterr().err)
        assert str(db) in err and "says 100 but the last sample present is #50, so 50 are missing" in err


def test_predict_tsv_escapes_tab_newline_and_backslash_in_names(model_file, tmp_path, capsys):
    names = ["tab\there.png", "new\nline.png", "back\\slash.png", "plain.png"]
    for n in names:
        render_text("AB").save(tmp_path / n)
    assert main(["predict", str(model_file), *[str(tmp_path / n) for n in names], "--format", "tsv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 4 and all(len(r.split("\t")) == 3 for r in rows), rows
    got = sorted(r.split("\t")[0].rsplit("/", 1)[-1] for r in rows)
    assert got == sorted(["tab\\there.png", "new\\nline.png", "back\\\\slash.png", "plain.png"])
    assert main(["predict", str(model_file), str(tmp_path / names[1])]) == 0  # text format: one line too
    assert len(capsys.readouterr().out.splitlines()) == 1


# ------------------------------------------------------------------------------------------ crnn prepare's LMDB

_PREPARE_AND_HANG = """
import sys, time
from crnn.data.lmdb_store import LmdbWriter
w = LmdbWriter(sys.argv[1])
w.add(b"half", "AB")
print(w._tmp, flush=True)
time.sleep(120)
"""


def test_a_killed_prepares_temp_folder_is_removed_by_the_next_but_a_live_ones_is_not(images, tmp_path, capsys):
    import signal
    import subprocess
    import sys

    out = tmp_path / "o.lmdb"
    live = subprocess.Popen([sys.executable, "-c", _PREPARE_AND_HANG, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        live_tmp = Path(live.stdout.readline().strip())
        assert live_tmp.is_dir() and live_tmp.name.startswith(".o.lmdb.")
        assert main(["prepare", str(images), str(out)]) == 0
        assert live_tmp.is_dir()  # another live prepare's work is left alone
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert main(["prepare", str(images), str(out), "--force"]) == 0
    capsys.readouterr()
    assert not live_tmp.exists()  # the killed one's is gone
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.lmdb")] == []


def test_prepare_under_an_8_gib_address_space_limit(images, tmp_path):
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    out = tmp_path / "o.lmdb"
    r = subprocess.run([sys.executable, "-m", "crnn", "prepare", str(images), str(out)], preexec_fn=limit,
                       capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                         "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (out / "data.mdb").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.lmdb")] == []


def test_lmdb_map_grows_with_the_data(tmp_path):
    import os

    from crnn.data.lmdb_store import LmdbReader, LmdbWriter

    blobs = [os.urandom(300_000) for _ in range(12)]  # 3.6 MB into a map that starts at 1 MiB
    with LmdbWriter(tmp_path / "g.lmdb", map_size=1 << 20) as w:
        for b in blobs:
            w.add(b, "AB")
    r = LmdbReader(tmp_path / "g.lmdb")
    assert len(r) == 12 and r.image_bytes(11) == blobs[11]
