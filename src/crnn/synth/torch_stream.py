"""A torch ``IterableDataset`` over a :class:`crnn.synth.SynthStream` (imports torch)."""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import IterableDataset


class SynthIterableDataset(IterableDataset):
    """Endless (image, label) pairs, split across loader workers without overlap."""

    def __init__(self, stream, transform: Callable | None = None):
        super().__init__()
        self.stream = stream
        self.transform = transform

    def __iter__(self):
        for pair in self.stream:
            yield self.transform(*pair) if self.transform is not None else pair
