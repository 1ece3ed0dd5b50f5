"""The real-benchmark script's scorer and set reader on a tiny fixture (no ../shared/data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import render_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_benchmarks as rb  # noqa: E402


@pytest.fixture
def tiny_set(tmp_path) -> Path:
    folder = tmp_path / "sets" / "tiny_test"
    (folder / "img").mkdir(parents=True)
    for name in ("a", "b", "c", "d"):
        render_text(name.upper()).save(folder / "img" / f"{name}.png")
    (folder / "labels.tsv").write_text("img/a.png\tCAFE\nimg/b.png\tBRUNOS\nimg/c.png\t7\nimg/d.png\tM A N\n",
                                       encoding="utf-8")
    (folder / "labels_casesensitive.tsv").write_text(
        "img/a.png\tcafé\nimg/b.png\tbrüno's\nimg/c.png\t7\nimg/d.png\tM a n\n", encoding="utf-8")
    return folder


def test_protocol_normal_forms():
    assert rb.standard("Brüno's CAFÉ 7!") == "brnoscaf7"
    assert rb.standard("INC.") == rb.standard("inc")
    assert rb.exact_form("  M  a\tn ") == "M a n"


def test_score_on_a_tiny_set(tiny_set):
    samples = rb.load_set(tiny_set)
    assert [s.label for s in samples] == ["CAFE", "BRUNOS", "7", "M A N"]
    assert [s.label_cs for s in samples] == ["café", "brüno's", "7", "M a n"]
    r = rb.score(samples, ["Cafe", "brunos", "1", "M  a n"])
    # standard: CAFE/Cafe, BRUNOS/brunos and "M A N"/"M  a n" match; 7 vs 1 does not
    assert r["n"] == 4 and r["standard"] == pytest.approx(3 / 4)
    # exact (case-sensitive labels): only "M a n" (whitespace normalised) matches
    assert r["exact"] == pytest.approx(1 / 4)
    # CER: café->Cafe 2, brüno's->brunos 2, 7->1 1, M a n 0 -> 5 edits over 4+7+1+5 = 17 characters
    assert r["cer"] == pytest.approx(5 / 17)
    assert rb.score(samples, [s.label_cs for s in samples]) == {"n": 4, "standard": 0.5, "exact": 1.0, "cer": 0.0}
    assert rb.score(samples, [s.label for s in samples])["standard"] == 1.0  # standard scores labels.tsv
    assert len(rb.load_set(tiny_set, limit=2)) == 2


def test_a_set_without_a_case_sensitive_file_uses_its_labels(tiny_set):
    (tiny_set / "labels_casesensitive.tsv").unlink()
    samples = rb.load_set(tiny_set)
    assert [s.label_cs for s in samples] == [s.label for s in samples]


def test_runs_on_the_fixture_and_skips_without_data(tiny_set, tmp_path, capsys):
    assert rb.main(["--data", str(tmp_path / "absent"), "--no-peers"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert rb.main(["--data", str(tiny_set.parent), "--no-peers", "--models", "builtin:en", "--backend", "torch",
                    "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "| builtin:en (torch) |" in out and "tiny_test (n=4)" in out
    assert '"standard"' in (tmp_path / "r.json").read_text()
    words = tmp_path / "words.txt"
    words.write_text("hello world open\n", encoding="utf-8")
    assert rb.main(["--data", str(tiny_set.parent), "--no-peers", "--models", "builtin:en", "--backend", "torch",
                    "--lm", str(words)]) == 0
    out = capsys.readouterr().out
    assert "| builtin:en (torch) |" in out and f"| builtin:en (torch, --lm {words}) |" in out
    assert rb.main(["--data", str(tiny_set.parent), "--sets", "nope", "--no-peers"]) == 2
