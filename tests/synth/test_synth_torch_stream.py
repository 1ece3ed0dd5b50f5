"""crnn.synth.torch_stream: the stream split across DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_synth_generate import WORDS

from crnn.synth import (
    SynthConfig,
    SynthStream,
    sample_at,
)


@pytest.fixture(scope="module")
def words_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("words") / "words.txt"
    p.write_text("\n".join(WORDS.split()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def cfg(words_file) -> SynthConfig:
    """Independent of installed system fonts and of wordfreq."""
    return SynthConfig(system_fonts=False, text=f"words:{words_file}", punct_prob=0.3, pattern_prob=0.2)


def _label_only(image, label):
    return label


def test_stream_in_dataloader_workers_splits_without_overlap(cfg):
    torch = pytest.importorskip("torch")
    ds = SynthStream(cfg, seed=6).as_torch_dataset(transform=_label_only)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = []
    for label in loader:
        got.append(label)
        if len(got) == 8:
            break
    assert got == [sample_at(cfg, 6, i).text for i in range(8)]
