"""``crnn demo`` end to end, shortened: generate CAPTCHAs, train, evaluate, predict, draw a figure."""

import pytest
import torch
from PIL import Image

from crnn.checkpoint import load_checkpoint
from crnn.demo import run_demo
from crnn.errors import CrnnError
from crnn.inference.zoo import resolve_model_path


def _first_conv_similarity(run_ckpt: dict) -> float:
    """Cosine similarity of the first conv layer's weights with builtin:en's."""
    shipped = load_checkpoint(resolve_model_path("builtin:en"))["model"]["cnn.0.0.weight"].flatten()
    mine = run_ckpt["model"]["cnn.0.0.weight"].flatten()
    if mine.shape != shipped.shape:
        return 0.0
    return float(torch.nn.functional.cosine_similarity(mine, shipped, dim=0))


@pytest.mark.parametrize("scratch", [False, True])
def test_demo_runs_end_to_end(tmp_path, capsys, scratch):
    assert run_demo(tmp_path, time_budget="3s", count=40, test_count=10, scratch=scratch) == 0
    out = capsys.readouterr().out
    assert "held-out word accuracy" in out and "model:" in out
    assert ("builtin:en as shipped" in out) is not scratch
    assert len(list((tmp_path / "data" / "train").glob("*.png"))) == 40
    (run,) = tmp_path.glob("run-*")
    assert (run / "best.pt").is_file()
    ckpt = load_checkpoint(run / "best.pt")
    # the model reads the CAPTCHA texts' own characters, whichever way it started
    assert set(ckpt["charset"]) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    similarity = _first_conv_similarity(ckpt)
    if scratch:
        assert similarity < 0.5
    else:  # a few seconds of fine-tuning leave the shipped features nearly as they were
        assert similarity > 0.9
    (figure,) = run.glob("explain-*.png")
    assert Image.open(figure).width > 200


def test_demo_counts_its_training_in_epochs_not_seconds(tmp_path, capsys):
    """By default the demo does a fixed amount of work, so a slow machine gets the same model, later."""
    assert run_demo(tmp_path, count=40, test_count=10, epochs=2) == 0
    assert "fine-tuning builtin:en for 2 epochs" in capsys.readouterr().out
    (run,) = tmp_path.glob("run-*")
    rows = (run / "metrics.csv").read_text().strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"time_budget": "soon"}, "bad duration"),
    ({"epochs": 0}, "at least one epoch"),
    ({"count": 0}, "at least one training"),
    ({"root": "file"}, "is a file, but the demo needs a folder there"),
    ({"root": "file/below"}, "is a file, but the demo needs a folder there"),
])
def test_demo_bad_arguments_fail_fast_in_one_line(tmp_path, kwargs, message):
    (tmp_path / "file").write_text("not a folder")
    root = tmp_path / kwargs.pop("root", "demo")
    with pytest.raises(CrnnError, match=message):
        run_demo(root, **{"time_budget": "3s", "count": 5, "test_count": 2, **kwargs})
    # nothing was generated before the arguments were checked
    assert not (tmp_path / "demo").exists()
