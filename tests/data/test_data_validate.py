"""crnn.data.validate: decoding and checking every sample, with the reasons for skips."""

from conftest import render_text
from crnn.data.images import Preprocess
from crnn.data.sources import open_source
from crnn.data.validate import Report, check_samples


def test_check_samples_reports_reasons(tmp_path):
    from crnn.charset import Charset

    render_text("AB").save(tmp_path / "AB.png")
    render_text("AZ").save(tmp_path / "AZ.png")
    (tmp_path / "BA.png").write_bytes(b"junk")
    report = Report("x")
    kept = list(check_samples(open_source(tmp_path), Preprocess(), Charset("AB"), report))
    assert [k.label for k in kept] == ["AB"]
    assert report.total == 3 and report.kept == 1 and report.unknown_chars == {"Z": 1}
    text = report.format()
    assert "not an image" in text and "'Z'" in text
