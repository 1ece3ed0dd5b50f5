"""crnn.insight.report: the ``crnn eval --report`` HTML page."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from conftest import make_toy_set
from crnn import Prediction
from crnn.data.validate import Report
from crnn.insight import report
from crnn.metrics import TextMetrics


class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.refs.append(a["src"])
        if tag == "a" and a.get("href"):
            self.refs.append(a["href"])
        if tag in ("script", "link"):
            self.problems.append(f"<{tag}> in a static page")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _check_page(page: Path) -> _Checker:
    checker = _Checker()
    checker.feed(page.read_text(encoding="utf-8"))
    checker.close()
    assert not checker.problems and not checker.stack, (checker.problems, checker.stack)
    for ref in checker.refs:
        assert "://" not in ref and not ref.startswith("/"), ref  # no external assets
        assert (page.parent / ref).is_file(), ref
    return checker


def test_report_page(rec, tmp_path):
    data = tmp_path / "hard"
    make_toy_set(data, 24, seed=7, min_len=4, max_len=9)  # longer than anything trained on: some errors
    (data / "zz_broken.png").write_bytes(b"nope")
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("zz_broken.png\tAB\n")
    metrics, data_report, preds = rec.evaluate(data)
    assert metrics.errors, "the test needs some errors"
    out = tmp_path / "rep"
    (out / "images").mkdir(parents=True)
    (out / "images" / "stale.png").write_bytes(b"old")
    page = report.write_report(out, rec, metrics, preds, data_report, str(data), worst=6, explain=1)
    assert page == out / "index.html"
    checker = _check_page(page)
    text = " ".join(checker.text)
    for heading in ("Metrics", "Accuracy by label length", "Character confusions", "Worst errors"):
        assert heading in text
    assert f"{metrics.accuracy:.2%}" in text and "zz_broken.png" in text
    shown = min(6, len(metrics.errors))
    gallery = [r for r in checker.refs if r.startswith("images/error_")]
    assert len(gallery) == shown
    assert sum(r.startswith("images/explain_") for r in checker.refs) == 1
    assert not (out / "images" / "stale.png").exists()
    img = Image.open(out / gallery[0])
    assert img.height == 32 and img.mode == "L"  # the image as the model saw it
    first = metrics.worst(6)[0]
    assert report.esc(first.truth) in page.read_text(encoding="utf-8")


def test_report_escapes_text(rec, tmp_path):
    evil = '<script>alert("x")</script>&'
    m = TextMetrics()
    m.update([evil, "AB"], ["A<b>", "AB"], names=[f"{evil}.png", "ok.png"], confidences=[0.9, 0.8])
    preds = [Prediction("A<b>", 0.9, f"{evil}.png"), Prediction("AB", 0.8, "ok.png")]

    data_report = Report(evil, total=3, kept=2, skipped=[(evil, evil)], unknown_chars=Counter({"<": 1}))
    page = report.write_report(tmp_path / "r", rec, m, preds, data_report, tmp_path / evil, explain=0)
    raw = page.read_text(encoding="utf-8")
    assert "<script>" not in raw and "<b>" not in raw
    assert "&lt;script&gt;" in raw
    checker = _check_page(page)
    assert "image unavailable" in " ".join(checker.text)
