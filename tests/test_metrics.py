"""crnn.metrics: character edits, confusions and ranking of character errors."""

from __future__ import annotations

from crnn.insight import report
from crnn.metrics import TextMetrics, char_edits, confusions


def test_char_edits_and_confusions():
    assert char_edits("AB-7", "A8-77") == [("substitution", "B", "8"), ("insertion", "", "7")]
    assert char_edits("AB", "B") == [("deletion", "A", "")]
    counts = confusions([("AB-7", "A8-77"), ("BB", "88"), ("x", "x")])
    assert counts == {("substitution", "B", "8"): 3, ("insertion", "", "7"): 1}
    assert report.visible(" ") == "\u2423" and report.visible("") == "\u2205"


def test_metrics_rank_character_errors():
    m = TextMetrics()
    m.update(["0O1", "O0", "HI", "AB", "OK"], ["OO1", "00", "H", "AB", "0K"])
    top = m.char_errors_top(2)
    assert top == [(("substitution", "O", "0"), 2), (("substitution", "0", "O"), 1)]
    listed = m.summary()["top_char_errors"]
    assert listed[0] == {"kind": "substitution", "truth": "O", "pred": "0", "count": 2}
    assert {"kind": "deletion", "truth": "I", "pred": "", "count": 1} in listed
