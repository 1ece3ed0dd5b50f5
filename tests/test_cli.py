"""The ``crnn`` command end to end: prepare -> train -> eval -> predict, and its error handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import error_line, one_error_line, render_text
from crnn.cli import main
from crnn.data.images import load_image


@pytest.fixture(scope="module")
def cli_run(toy_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["prepare", str(toy_data / "train"), str(root / "train.lmdb")]) == 0
    cfg = root / "tiny.toml"
    cfg.write_text("[data]\nheight = 32\n[model]\nrnn_hidden = 64\n[train]\nbatch_size = 16\nepochs = 10\n")
    assert main(["train", "--train", str(root / "train.lmdb"), "--val", str(toy_data / "test"), "--out",
                 str(root / "run"), "--config", str(cfg), "--no-progress"]) == 0
    return root


def test_eval_json(cli_run, toy_data, capsys):
    capsys.readouterr()
    assert main(["eval", str(cli_run / "run" / "best.pt"), str(toy_data / "test"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 40 and out["word_accuracy"] >= 0.85
    assert {"cer", "ned", "word_accuracy_nocase", "accuracy_by_length", "worst_errors", "top_char_errors"} <= set(out)
    # every listed character error comes from a listed word error
    for err in out["top_char_errors"]:
        assert any(err["truth"] in w["truth"] and err["pred"] in w["pred"] for w in out["worst_errors"])


def test_char_error_text():
    from crnn.cli import _char_error_text

    assert _char_error_text({"kind": "substitution", "truth": "0", "pred": "O", "count": 17}) == "'0' read as 'O' x17"
    assert _char_error_text({"kind": "deletion", "truth": "H", "pred": "", "count": 3}) == "'H' dropped x3"
    assert _char_error_text({"kind": "insertion", "truth": "", "pred": "I", "count": 2}) == "extra 'I' x2"


def test_eval_table(cli_run, toy_data, capsys):
    assert main(["eval", str(cli_run / "run" / "best.pt"), str(toy_data / "test")]) == 0
    out = capsys.readouterr().out
    assert "word accuracy" in out and "CER" in out and "accuracy by label length" in out


def test_predict_formats(cli_run, toy_data, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for t in ["AB", "7x-"]:
        render_text(t).save(imgs / f"{t}.png")
    model = str(cli_run / "run" / "best.pt")
    capsys.readouterr()
    assert main(["predict", model, str(imgs), "--format", "tsv"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0].rsplit("/", 1)[1] for r in rows] == ["7x-.png", "AB.png"]
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    assert sum(r[1] == r[0].rsplit("/", 1)[1][:-4] for r in rows) >= 1
    assert main(["predict", model, str(imgs / "*.png"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 2 and {"name", "text", "confidence"} <= set(data[0])


def test_predict_reports_broken_images_and_goes_on(cli_run, tmp_path, capsys):
    render_text("AB").save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    capsys.readouterr()
    assert main(["predict", str(cli_run / "run" / "best.pt"), str(tmp_path), "--format", "tsv"]) == 1
    out, err = capsys.readouterr()
    assert "ok.png" in out and "bad.png" in err and "not an image" in err


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "junk.pt").write_text("junk")
    cases = [["predict", str(tmp_path / "junk.pt"), str(tmp_path)],
             ["eval", "builtin:nope", str(tmp_path)],
             ["train", "--train", str(tmp_path / "missing"), "--out", str(tmp_path / "r")],
             ["train", "--train", str(tmp_path), "--out", str(tmp_path / "r"), "--set", "train.bogus=1"],
             ["prepare", str(tmp_path / "empty"), str(tmp_path / "o.lmdb")]]
    (tmp_path / "empty").mkdir()
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("command", ["train", "train-below", "prepare", "synth", "export"])
def test_a_file_where_an_output_folder_must_go_is_one_line(cli_run, toy_data, tmp_path, capsys, command):
    """A typo'd --out that hits a file is named in one line, before any long work and without a traceback."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("my notes")
    model = str(cli_run / "run" / "best.pt")
    argv = {"train": ["train", "--train", str(toy_data / "train"), "--out", str(blocker), "--no-progress"],
            "train-below": ["train", "--train", str(toy_data / "train"), "--out", str(blocker / "run"),
                            "--no-progress"],
            "prepare": ["prepare", str(toy_data / "train"), str(blocker / "train.lmdb")],
            "synth": ["synth", str(blocker / "synth"), "--count", "2", "--no-progress"],
            "export": ["export", model, "--format", "onnx", "--out", str(blocker / "m.onnx")]}[command]
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"error: {blocker}: is a file") and len(err.splitlines()) == 1, err
    assert "model:" not in captured.out  # training never started
    assert blocker.read_text() == "my notes"


def test_beam_and_lexicon_decoding(cli_run, toy_data, tmp_path, capsys):
    model = str(cli_run / "run" / "best.pt")
    words = ["AB", "7x-", "BBA", "x7"]
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for t in ["AB", "7x", "BBA"]:
        render_text(t).save(imgs / f"{t}.png")
    capsys.readouterr()
    assert main(["predict", model, str(imgs), "--format", "json", "--lexicon", str(tmp_path / "words.txt")]) == 0
    lex = {p["name"].rsplit("/", 1)[1]: p["text"] for p in json.loads(capsys.readouterr().out)}
    assert set(lex.values()) <= set(words)  # a lexicon decode always returns a lexicon word
    assert lex["AB.png"] == "AB" and lex["BBA.png"] == "BBA"
    assert main(["predict", model, str(imgs), "--format", "json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert main(["predict", model, str(imgs), "--format", "json", "--beam", "8"]) == 0
    beam = json.loads(capsys.readouterr().out)
    assert [b["text"] for b in beam] == [g["text"] for g in greedy]  # a trained model's outputs are peaked
    assert main(["eval", model, str(toy_data / "test"), "--json", "--beam", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["word_accuracy"] >= 0.85


@pytest.mark.parametrize("command", ["prepare", "train", "eval", "predict"])
def test_empty_and_missing_folders_stop_with_one_line(command, tmp_path, model_file, capsys):
    empty, missing, only_junk = tmp_path / "empty", tmp_path / "missing", tmp_path / "junk"
    empty.mkdir()
    only_junk.mkdir()
    (only_junk / "notes.txt").write_text("x")
    for data, expect in ((empty, "empty"), (missing, "no such file"), (only_junk, "no usable sample")):
        argv = {"prepare": ["prepare", str(data), str(tmp_path / "o.lmdb")],
                "train": ["train", "--train", str(data), "--out", str(tmp_path / "run"), "--no-progress"],
                "eval": ["eval", str(model_file), str(data)],
                "predict": ["predict", str(model_file), str(data)]}[command]
        capsys.readouterr()
        assert main(argv) == 2, (command, data)
        line = error_line(capsys.readouterr().err)
        if command == "predict":  # predict takes images, not a dataset
            expect = "no images found" if data != missing else "no such file"
        assert expect in line and (data.name in line), line
    assert not (tmp_path / "o.lmdb").exists() and not (tmp_path / "run" / "last.pt").exists()


def test_eval_skips_and_reports_bad_files(zoo, model_file, capsys):
    assert main(["eval", str(model_file), str(zoo["root"])]) == 0
    out, err = capsys.readouterr()
    # eval keeps labels the model cannot spell (they count as errors) but lists the characters
    assert "9 samples, 8 skipped" in out
    assert "characters this model cannot output: 'Zq'" in out
    # grouped counts, then (the CLI shows up to 20: here all 8) examples, each one line naming its file
    for n, kind in ((2, "refused as a possible decompression bomb"), (2, "not an image"), (1, "empty file"),
                    (1, "truncated or corrupt image"), (1, "empty label"), (1, "not an image file extension")):
        assert f"skipped {n:6d} x {kind}\n" in err, (kind, err)
    examples = [ln.strip() for ln in err.splitlines() if ln.startswith("    ") and "more (see" not in ln]
    assert len(examples) == 8 and all(ln.startswith(str(zoo["root"])) and ": " in ln for ln in examples)


def _mode_image(mode: str) -> tuple[str, Image.Image]:
    """A 60 x 20 picture of text in ``mode`` and a file format that can hold that mode and EXIF."""
    base = render_text("AB").convert("RGB").resize((60, 20))
    img = base.convert("L").convert(mode) if mode in ("I;16", "I", "F") else base.convert(mode)
    return ("tiff" if mode in ("CMYK", "I", "F") else "png"), img


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_with_exif_rotation(mode, tmp_path):
    ext, img = _mode_image(mode)
    img.save(tmp_path / f"plain.{ext}")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    path = tmp_path / f"r.{ext}"
    img.save(path, exif=exif)
    assert Image.open(path).mode == mode
    out = load_image(path)
    assert out.size == (20, 60) and out.mode in ("L", "RGB")  # upright: the EXIF rotation was applied
    want = load_image(tmp_path / f"plain.{ext}").transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(np.asarray(out), np.asarray(want))  # ... to the right pixels
    a = np.asarray(out.convert("L"))
    assert a.min() < 100 and a.max() > 150  # the text survived


def test_predict_reads_every_mode_and_size_and_names_each_bad_file(zoo, model_file, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    names = []
    for mode in MODES:
        ext, img = _mode_image(mode)
        exif = Image.Exif()
        exif[0x0112] = 8
        name = f"mode_{mode.replace(';', '_')}.{ext}"
        img.save(imgs / name, exif=exif)
        names.append(str(imgs / name))
    names += [str(zoo["root"] / "A.png"), str(zoo["root"] / "xx.png")]  # 1 x 1 and 20,000 x 20
    bad = [zoo["bad"][k] for k in ("truncated", "not an image", "empty file", "PDF as JPEG", "bomb (header)",
                                   "bomb (pixels)")]
    assert main(["predict", str(model_file), *names, *bad, "--format", "tsv"]) == 1
    out, err = capsys.readouterr()
    rows = [ln.split("\t") for ln in out.strip().splitlines()]
    assert [r[0] for r in rows] == names and all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    err_lines = err.strip().splitlines()
    assert len(err_lines) == len(bad) + 1 and err_lines[-1] == f"{len(bad)} of {len(names) + len(bad)} images " \
                                                                "could not be read"
    for name, line in zip(bad, err_lines):
        assert line.startswith(f"error: {name}: ")


@pytest.mark.parametrize("command", ["predict", "eval"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_batch_size_below_one_is_one_line(command, value, model_file, images, capsys):
    assert main([command, str(model_file), str(images), "--batch-size", value]) == 2
    assert f"--batch-size must be at least 1, got {value}" in one_error_line(capsys.readouterr().err)


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


def test_language_model_decoding(cli_run, toy_data, tmp_path, capsys):
    """``--lm`` through predict and eval: a word list whose words the images spell leaves clear readings as they
    are; the flags that need --lm, or clash with --lexicon, are refused in one line."""
    model = str(cli_run / "run" / "best.pt")
    (tmp_path / "words.txt").write_text("AB BBA x\n", encoding="utf-8")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for t in ["AB", "7x", "BBA"]:
        render_text(t).save(imgs / f"{t}.png")
    capsys.readouterr()
    assert main(["predict", model, str(imgs), "--format", "json"]) == 0
    greedy = json.loads(capsys.readouterr().out)
    assert main(["predict", model, str(imgs), "--format", "json", "--lm", str(tmp_path / "words.txt")]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert [f["text"] for f in fused] == [g["text"] for g in greedy]  # a trained model's clear readings stay
    assert main(["eval", model, str(toy_data / "test"), "--json", "--lm", str(tmp_path / "words.txt"),
                 "--lm-weight", "0.5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["word_accuracy"] >= 0.85
    # The summary says how it decoded: a score means little without it.
    assert summary["decoding"] == f"beam 10 + language model {tmp_path / 'words.txt'} (weight 0.5, bonus 0.5)"
    assert main(["eval", model, str(toy_data / "test"), "--json", "--beam", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["decoding"] == "beam 4"
    for argv, why in [(["--lm-weight", "0.5"], "--lm-weight and --lm-bonus need --lm"),
                      (["--lm", str(tmp_path / "words.txt"), "--lexicon", str(tmp_path / "words.txt")],
                       "give a lexicon or a language model, not both"),
                      (["--lm", str(tmp_path / "none.txt")], "no such word list"),
                      (["--lm", str(tmp_path / "words.txt"), "--lm-weight", "-2"], "lm weight must be")]:
        assert main(["predict", model, str(imgs), *argv]) == 2
        assert why in one_error_line(capsys.readouterr().err)


_LATE_SIGNAL = """
import atexit, os, signal, sys
from crnn import cli
cli.main = lambda argv=None: cli.EXIT_LEARNED_NOTHING  # a command that has done its work and chosen its status
# the signal lands after the command returned, while the interpreter shuts down
atexit.register(lambda: os.kill(os.getpid(), getattr(signal, sys.argv[1])))
raise SystemExit(cli.run())
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_command_finished_keeps_its_exit_status(sig):
    """Ctrl-C just as `crnn train` ends must not turn its status into a death by signal (CI saw -2 once)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _LATE_SIGNAL, sig], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr)


def test_the_crnn_script_runs_the_signal_safe_entry_point():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "crnn"]
    assert script.value == "crnn.cli:run"
