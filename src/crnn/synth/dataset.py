"""``--train synth:CONFIG``: synthetic text rendered on the fly, never repeating.

Sample ``i`` of epoch ``e`` is ``crnn.synth.sample_at(cfg, seed, e * epoch_size + i)``,
so a run is reproducible, resumable (the epoch fixes the indices) and can render
in data-loader workers. It can be mixed with real data: each ``--train`` source
is concatenated, and every epoch draws ``epoch_size`` fresh synthetic samples.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch

from crnn.charset import Charset
from crnn.data.dataset import TextLineDataset
from crnn.data.images import Preprocess, to_model_array
from crnn.errors import CrnnError

PREFIX = "synth:"


def is_synth(location: str | os.PathLike) -> bool:
    return str(location).startswith(PREFIX)


def load_synth(location: str | os.PathLike, pre: Preprocess, charset: str | None):
    """The synth config named by ``synth:PATH``, with height/channels/charset made to fit the model."""
    return synth_config_file(str(location)[len(PREFIX):], pre, charset)


def synth_config_file(path: str, pre: Preprocess, charset: str | None):
    """The synth config in the TOML file ``path`` (empty: the defaults), made to fit the model as above."""
    from crnn.synth import SynthConfig, load_synth_config

    try:
        cfg = load_synth_config(path) if path else SynthConfig()
    except (OSError, ValueError) as e:
        raise CrnnError(f"{path}: cannot use synth config ({e})") from None
    changes: dict[str, Any] = {"height": pre.height, "channels": pre.channels}
    if charset:
        changes["charset"] = charset
    return dataclasses.replace(cfg, **changes)


class SynthDataset(torch.utils.data.Dataset):
    """``epoch_size`` freshly rendered samples per epoch; call :meth:`set_epoch` each epoch."""

    def __init__(self, cfg, seed: int, epoch_size: int, pre: Preprocess, charset: Charset):
        self.cfg, self.seed, self.epoch_size, self.pre, self.charset = cfg, seed, epoch_size, pre, charset
        self.epoch = 0
        self.widths = np.zeros(epoch_size, dtype=np.int64)  # unknown until rendered: batched together

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.epoch_size

    def __getitem__(self, i: int):
        from crnn.synth import sample_at

        s = sample_at(self.cfg, self.seed, self.epoch * self.epoch_size + i)
        return to_model_array(s.image, self.pre), self.charset.encode(s.text), s.text

    def render_fixed(self, n: int, seed: int) -> TextLineDataset:
        """A fixed, in-memory set (validation) from another seed."""
        from crnn.synth import sample_at

        arrays, labels, targets = [], [], []
        for i in range(n):
            s = sample_at(self.cfg, seed, i)
            arrays.append(to_model_array(s.image, self.pre))
            labels.append(s.text)
            targets.append(self.charset.encode(s.text))
        return TextLineDataset(arrays, labels, targets)


class Mixed(torch.utils.data.ConcatDataset):
    """Real (in-memory) and synthetic datasets, with the ``widths`` the bucketing sampler needs."""

    def __init__(self, parts):
        super().__init__(parts)
        self.widths = np.concatenate([p.widths for p in parts])

    def set_epoch(self, epoch: int) -> None:
        for p in self.datasets:
            if hasattr(p, "set_epoch"):
                p.set_epoch(epoch)
