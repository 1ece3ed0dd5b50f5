"""crnn.export.torchscript: a TorchScript export round-trips to the same readings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TOLERANCE
from crnn import Recognizer
from crnn.export.torchscript import export_torchscript
from crnn.inference.exported import METADATA_KEY
from crnn.inference.torchscript import TorchScriptRecognizer


@pytest.fixture(scope="module")
def images(width_images) -> list[Path]:
    """Text lines of many widths (``width_images`` in conftest.py)."""
    return width_images


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_round_trip(model_path, images, tmp_path):
    result = export_torchscript(model_path, tmp_path / "tiny.torchscript.pt")
    assert result.max_abs_diff is not None and result.max_abs_diff < TOLERANCE
    rec, ts = Recognizer.load(model_path), TorchScriptRecognizer.load(result.path)
    assert ts.charset == rec.charset and ts.preprocess == rec.preprocess
    for batch_size in (64, 1):
        a, b = rec.predict(images, batch_size=batch_size), ts.predict(images, batch_size=batch_size)
        assert [p.text for p in a] == [p.text for p in b]
        np.testing.assert_allclose([p.confidence for p in a], [p.confidence for p in b], atol=1e-4)
    lp_a, lp_b = rec.log_probs(images[:5]), ts.log_probs(images[:5])
    assert all(np.abs(x - y).max() < TOLERANCE for x, y in zip(lp_a, lp_b))
    # plain torch.jit.load works too, with the metadata as an extra file
    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.jit.load(str(result.path), _extra_files=extra)
    assert json.loads(extra[f"{METADATA_KEY}.json"])["charset"] == rec.charset.chars
    lp, lengths = module(torch.zeros(2, 1, 32, 40), torch.tensor([40, 17]))
    assert lp.shape[:2] == (2, 10) and lengths.tolist() == [10, 4]
