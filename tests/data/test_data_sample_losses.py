"""Each training sample's CTC-loss history (``RUN/sample_losses.tsv``) and the audit that ranks by it."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from conftest import TOY_ALPHABET, make_toy_set
from crnn import Recognizer
from crnn.checkpoint import load_checkpoint
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.data.sample_losses import read_sample_losses, write_sample_losses
from crnn.insight.audit import audit
from crnn.training.loop import train

FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.seed=0",
        "data.val_fraction=0"]

PLANTED = 8  # of 80 labels


def _name(s) -> str:
    return s.name.rsplit("/", 1)[-1]


def _quiet(cfg: Config, data, run, **kw):
    return train(cfg, data, run, progress=False, log=lambda *a: None, **kw)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """80 toy labels, 8 of them wrong, trained without augmentation until the model reproduces most of them."""
    root = tmp_path_factory.mktemp("memorised")
    make_toy_set(root / "data", 80, seed=1)
    lines = (root / "data" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    rng = random.Random(5)
    wrong = {}
    for i in rng.sample(range(len(lines)), PLANTED):
        name, label = lines[i].split("\t")
        j = rng.randrange(len(label))
        lines[i] = f"{name}\t{label[:j]}{rng.choice([c for c in TOY_ALPHABET if c != label[j]])}{label[j + 1:]}"
        wrong[name] = label
    (root / "data" / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = _quiet(apply_overrides(Config(), FAST + ["train.epochs=40", "augment.enabled=false"]), root / "data",
                 root / "run")
    return root / "data", res, wrong


def test_history_file_lists_every_training_sample_each_epoch(memorised):
    data, res, _ = memorised
    hist = read_sample_losses(res.run_dir / "sample_losses.tsv")
    labels = dict(line.split("\t") for line in (data / "labels.tsv").read_text(encoding="utf-8").splitlines())
    assert {_n.rsplit("/", 1)[-1] for _n in hist} == set(labels)
    assert all(h.seen == 40 for h in hist.values())  # each sample once an epoch, nothing dropped
    assert all(h.label == labels[n.rsplit("/", 1)[-1]] for n, h in hist.items())
    assert all(h.mean >= 0 for h in hist.values())
    saved = load_checkpoint(res.last_path)["train_state"]["sample_losses"]
    assert int(saved["count"].sum()) == 40 * 80


def test_history_audit_finds_memorised_label_errors_the_margin_misses(memorised):
    data, res, wrong = memorised
    rec = Recognizer.load(res.best_path)
    result = audit(rec, data, history=res.run_dir / "sample_losses.tsv")
    assert result.history_covered == 80 and all(s.scored_by == "train" for s in result.suspects)
    memorised_count = sum(s.reading == s.label for s in result.suspects if _name(s) in wrong)
    assert memorised_count >= PLANTED // 2  # the premise: the model reproduces most wrong labels
    by_history = {_name(s) for s in result.top(2 * PLANTED)}
    plain = audit(rec, data)
    assert plain.history is None and all(s.score is None for s in plain.suspects)
    by_margin = {_name(s) for s in plain.top(2 * PLANTED)}
    assert len(by_history & set(wrong)) >= 0.8 * PLANTED, sorted(by_history & set(wrong))
    assert len(by_margin & set(wrong)) < len(by_history & set(wrong))
    scores = [s.score for s in result.suspects]
    assert scores == sorted(scores, reverse=True)


def test_cli_uses_the_history_beside_a_runs_model(memorised, capsys):
    data, res, wrong = memorised
    assert main(["audit", str(res.best_path), str(data), "--json", "--top", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["history"].endswith("sample_losses.tsv") and out["history_covered"] == 80
    assert "training" in out["score"]
    assert all(s["scored_by"] == "train" and s["seen"] == 40 for s in out["suspects"])
    assert main(["audit", str(res.best_path), str(data), "--top", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "training loss" in table[0] and "score" in table[1] and len(table) == 5
    assert " train " in table[2]
    assert main(["audit", str(res.best_path), str(data), "--json", "--history", "none"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["history"] is None and "score" not in out["suspects"][0]


def test_a_label_changed_since_training_is_not_judged_by_the_old_loss(memorised, tmp_path):
    data, res, wrong = memorised
    fixed = tmp_path / "fixed"
    shutil.copytree(data, fixed)
    lines = (fixed / "labels.tsv").read_text(encoding="utf-8").splitlines()
    lines = [f"{n}\t{wrong[n]}" if n in wrong else f"{n}\t{lab}" for n, lab in (x.split("\t") for x in lines)]
    (fixed / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    hist = read_sample_losses(res.run_dir / "sample_losses.tsv")
    renamed = {k.replace(str(data), str(fixed)): v for k, v in hist.items()}
    result = audit(Recognizer.load(res.best_path), fixed, history=renamed)
    now = {_name(s) for s in result.suspects if s.scored_by == "now"}
    assert now == set(wrong) and result.history_covered == 80 - PLANTED


def test_history_file_round_trips_odd_names_and_rejects_other_files(tmp_path):
    path = tmp_path / "h.tsv"
    write_sample_losses(path, ["a\tb.png", "c\\d.png", "never.png"], ["A\nB", "7", "x"], [3.0, 0.5, 0.0], [2, 1, 0])
    got = read_sample_losses(path)
    assert set(got) == {"a\tb.png", "c\\d.png"}
    assert got["a\tb.png"].label == "A\nB" and got["a\tb.png"].mean == 1.5 and got["a\tb.png"].seen == 2
    (tmp_path / "bad.tsv").write_text("x\ty\n", encoding="utf-8")
    with pytest.raises(Exception) as e:
        read_sample_losses(tmp_path / "bad.tsv")
    assert "bad.tsv" in str(e.value) and "\n" not in str(e.value)
