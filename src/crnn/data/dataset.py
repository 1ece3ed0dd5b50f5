"""Training batches: decoded uint8 images in memory, bucketed by width, padded per batch.

Decoding and resizing happen once (:mod:`crnn.data.validate`); an epoch then only
stacks arrays, so even two CPU cores keep the model busy. Batches group images
of similar width so little of each batch is padding.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from crnn.data.images import normalize_batch


class TextLineDataset(torch.utils.data.Dataset):
    """Pre-decoded images (uint8, model height) with their encoded labels.

    ``names`` (optional): each sample's record name (as the source lists it), so what training learns
    about a sample (its loss history, ``RUN/sample_losses.tsv``) can be told back to ``crnn audit``.
    """

    def __init__(self, arrays: list[np.ndarray], labels: list[str], targets: list[list[int]],
                 names: list[str] | None = None):
        assert len(arrays) == len(labels) == len(targets)
        assert names is None or len(names) == len(arrays)
        self.arrays, self.labels, self.targets, self.names = arrays, labels, targets, names
        self.widths = np.array([a.shape[1] for a in arrays], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.arrays)

    def extend(self, other: TextLineDataset) -> TextLineDataset:
        """Both datasets as one (several ``--train`` sources); names only when both have them."""
        names = self.names + other.names if self.names is not None and other.names is not None else None
        return TextLineDataset(self.arrays + other.arrays, self.labels + other.labels, self.targets + other.targets,
                               names)

    def subset(self, idx: list[int]) -> TextLineDataset:
        """The samples at ``idx``, in that order (names carried)."""
        return TextLineDataset([self.arrays[i] for i in idx], [self.labels[i] for i in idx],
                               [self.targets[i] for i in idx],
                               None if self.names is None else [self.names[i] for i in idx])

    def __getitem__(self, i: int) -> tuple[np.ndarray, list[int], str]:
        return self.arrays[i], self.targets[i], self.labels[i]


class Batch:
    """A padded batch: images (B, C, H, W) in [-1, 1], true widths, concatenated CTC targets."""

    def __init__(self, images: torch.Tensor, widths: torch.Tensor, targets: torch.Tensor,
                 target_lengths: torch.Tensor, labels: list[str]):
        self.images, self.widths, self.targets, self.target_lengths, self.labels = (
            images, widths, targets, target_lengths, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def pin_memory(self) -> Batch:
        self.images = self.images.pin_memory()
        return self


def collate(samples: list[tuple[np.ndarray, list[int], str]], channels: int = 1) -> Batch:
    images, widths = normalize_batch([s[0] for s in samples], channels)
    targets = torch.tensor([t for s in samples for t in s[1]], dtype=torch.long)
    lengths = torch.tensor([len(s[1]) for s in samples], dtype=torch.long)
    return Batch(torch.from_numpy(images), torch.from_numpy(widths), targets, lengths, [s[2] for s in samples])


class WidthBucketSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of similar-width images; deterministic for a (seed, epoch).

    Indices are shuffled, cut into chunks of ``bucket`` batches, each chunk is
    sorted by width and cut into batches, and the batches are shuffled again.
    ``rank``/``world`` give each distributed process its share of every batch, so all
    processes take the same number of steps and together see ``batch_size`` images a step.
    """

    def __init__(self, widths: np.ndarray, batch_size: int, seed: int = 0, bucket: int = 32,
                 drop_last: bool = False, rank: int = 0, world: int = 1):
        self.widths, self.batch_size, self.seed, self.bucket = widths, batch_size, seed, bucket
        self.drop_last, self.rank, self.world = drop_last, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.widths))
        chunk = self.batch_size * self.bucket
        out: list[list[int]] = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(self.widths[part], kind="stable")]
            out.extend(part[i:i + self.batch_size].tolist() for i in range(0, len(part), self.batch_size))
        if self.drop_last and out and len(out[-1]) < self.batch_size and len(out) > 1:
            out.pop()
        perm = rng.permutation(len(out))
        out = [out[i] for i in perm]
        if self.world > 1:  # each process takes its share of every (global) batch
            out = [np.array_split(np.asarray(b), self.world)[self.rank].tolist() for b in out if len(b) >= self.world]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
