"""``crnn demo`` end to end, shortened: generate CAPTCHAs, train, evaluate, predict, draw a figure."""

from PIL import Image

from crnn.demo import run_demo


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert run_demo(tmp_path, time_budget="3s", count=40, test_count=10) == 0
    out = capsys.readouterr().out
    assert "held-out word accuracy" in out and "model:" in out
    assert len(list((tmp_path / "data" / "train").glob("*.png"))) == 40
    (run,) = tmp_path.glob("run-*")
    assert (run / "best.pt").is_file()
    (figure,) = run.glob("explain-*.png")
    assert Image.open(figure).width > 200
