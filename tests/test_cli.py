"""The ``crnn`` command end to end: prepare -> train -> eval -> predict, and its error handling."""

import json

import pytest

from conftest import render_text
from crnn.cli import main


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
