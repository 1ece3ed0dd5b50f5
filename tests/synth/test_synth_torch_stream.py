"""crnn.synth.torch_stream: the stream split across DataLoader workers."""

from __future__ import annotations

import pytest

from crnn.synth import (
    SynthStream,
    sample_at,
)


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
