"""``crnn audit``: planted label errors in a tiny data set come out on top of the ranking."""

from __future__ import annotations

import json
import math
import random
import shutil

import pytest

from conftest import TOY_ALPHABET
from crnn import Recognizer
from crnn.cli import main
from crnn.config import Config, apply_overrides
from crnn.insight.audit import audit, load_audit, score

FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.seed=0"]

PLANTED = 12  # 5 % of the 240 training labels


def _corrupt(label: str, rng: random.Random) -> str:
    """``label`` with one character changed to another of the alphabet."""
    i = rng.randrange(len(label))
    return label[:i] + rng.choice([c for c in TOY_ALPHABET if c != label[i]]) + label[i + 1:]


@pytest.fixture(scope="module")
def noisy(toy_data, tmp_path_factory):
    """The toy training set with 12 labels corrupted, and a small model trained on it (errors included)."""
    from crnn.training.loop import train

    root = tmp_path_factory.mktemp("audit")
    data = root / "data"
    shutil.copytree(toy_data / "train", data)
    lines = (data / "labels.tsv").read_text(encoding="utf-8").splitlines()
    rng = random.Random(5)
    wrong = {}
    for i in rng.sample(range(len(lines)), PLANTED):
        name, label = lines[i].split("\t")
        lines[i] = f"{name}\t{_corrupt(label, rng)}"
        wrong[name] = label
    (data / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = train(apply_overrides(Config(), FAST + ["train.epochs=12"]), data, root / "run",
                   val_path=toy_data / "test", progress=False, log=lambda *a: None)
    return data, result.best_path, wrong


def test_audit_ranks_planted_label_errors_first(noisy):
    data, model, wrong = noisy
    result = audit(Recognizer.load(model), data)
    assert len(result.suspects) == 240
    top = [s.name.rsplit("/", 1)[-1] for s in result.top(2 * PLANTED)]
    found = set(top) & set(wrong)
    assert len(found) >= 0.8 * PLANTED, (sorted(found), top)
    first = result.suspects[0]
    assert first.margin > 0 and first.reading != first.label
    # for a planted error the model's reading is (mostly) the true label
    assert sum(s.reading == wrong.get(s.name.rsplit("/", 1)[-1]) for s in result.top(2 * PLANTED)) >= PLANTED // 2
    margins = [s.margin for s in result.suspects]
    assert margins == sorted(margins, reverse=True)
    agree = [s for s in result.suspects if s.reading == s.label]
    assert agree and all(s.margin == pytest.approx(0.0, abs=1e-9) for s in agree)


def test_score_is_the_ctc_loss_of_training(noisy):
    """The margin's NLL is the loss training minimises (torch's F.ctc_loss), not a third copy of it."""
    import torch
    import torch.nn.functional as F

    data, model, _ = noisy
    rec = Recognizer.load(model)
    lp = rec.log_probs([data / "00003.png"])[0]
    indices = rec.charset.encode("AB")
    _, label_nll, _, _ = score(lp, indices, rec.charset)
    t = torch.from_numpy(lp).unsqueeze(1)
    ref = F.ctc_loss(t, torch.tensor([indices]), torch.tensor([lp.shape[0]]), torch.tensor([len(indices)]),
                     blank=0, reduction="sum")
    assert label_nll == pytest.approx(float(ref), rel=1e-4)


def test_cli_table_json_and_unscorable_labels(noisy, tmp_path, capsys):
    data, model, wrong = noisy
    odd = tmp_path / "odd"
    shutil.copytree(data, odd)
    lines = (odd / "labels.tsv").read_text(encoding="utf-8").splitlines()
    name0 = lines[0].split("\t")[0]
    lines[0] = f"{name0}\tAQ"  # 'Q' is not in the model's charset
    (odd / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert main(["audit", str(model), str(odd), "--json", "--top", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 240 and len(out["suspects"]) == 5
    assert out["suspects"][0]["name"].endswith(name0) and out["suspects"][0]["margin"] is None
    assert "'Q'" in out["suspects"][0]["reason"]
    saved = tmp_path / "audit.json"
    saved.write_text(json.dumps(out), encoding="utf-8")
    assert load_audit(saved)["suspects"][0]["label"] == "AQ"

    assert main(["audit", str(model), str(odd), "--top", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "240 samples" in table[0] and len(table) == 2 + 3
    assert "cannot" in table[2] and name0 in table[2]
    assert math.isinf(audit(Recognizer.load(model), odd).suspects[0].margin)


def test_bad_audit_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "a.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(Exception) as e:
        load_audit(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_eval_report_has_an_audit_gallery(noisy, tmp_path, capsys):
    data, model, wrong = noisy
    assert main(["eval", str(model), str(data), "--report", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Audit: labels most likely wrong</h2>" in page
    section = page.split("<h2>Audit: labels most likely wrong</h2>", 1)[1]
    listed = [name for name in wrong if f"{name}</span>" in section]
    assert len(listed) >= 0.8 * PLANTED
    assert (tmp_path / "report" / "images" / "audit_000.png").exists()
