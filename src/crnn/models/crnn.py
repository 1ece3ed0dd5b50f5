"""The CRNN of Shi, Bai and Yao (arXiv 1507.05717), and its smaller cousins.

A stack of conv blocks turns a (B, C, H, W) image into a (B, C', h, W/4) feature
map; each column becomes one time step (map-to-sequence: channels x remaining
height are flattened into the feature vector), a bidirectional RNN reads the
sequence, and a linear layer gives per-step class log-probabilities for CTC.

Width is pooled by 4 in every preset, so an image of width ``W`` gives about
``W / 4`` time steps: :meth:`CRNN.output_lengths` computes it exactly, and the
CTC loss uses each image's own length rather than the padded batch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Block:
    """One conv stage: ``out`` channels, 3x3 (padded) or 2x2 (unpadded, the paper's last layer), BN, ReLU,
    then an optional max-pool."""

    out: int
    pool: tuple[int, int] | None = None
    separable: bool = False
    kernel: int = 3


def _conv_block(cin: int, b: Block) -> nn.Sequential:
    if b.separable and cin != b.out:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
            nn.Conv2d(cin, b.out, 1, bias=False), nn.BatchNorm2d(b.out), nn.ReLU(inplace=True),
        ]
    elif b.separable:
        layers = [nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                  nn.ReLU(inplace=True)]
    else:
        pad = 1 if b.kernel == 3 else 0
        layers = [nn.Conv2d(cin, b.out, b.kernel, padding=pad, bias=False), nn.BatchNorm2d(b.out),
                  nn.ReLU(inplace=True)]
    if b.pool:
        layers.append(nn.MaxPool2d(b.pool, b.pool))
    return nn.Sequential(*layers)


class CRNN(nn.Module):
    """Conv stack -> columns -> bidirectional RNN -> linear -> log-softmax.

    ``forward`` returns log-probabilities of shape (B, T, num_classes).
    """

    def __init__(self, blocks: list[Block], num_classes: int, in_channels: int = 1, height: int = 32,
                 rnn_type: str = "GRU", rnn_layers: int = 2, rnn_hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.blocks = list(blocks)
        stages, cin, h = [], in_channels, height
        for b in blocks:
            stages.append(_conv_block(cin, b))
            cin = b.out
            if b.kernel != 3:
                h -= b.kernel - 1
            if b.pool:
                h //= b.pool[0]
        if h < 1:
            raise ValueError(f"input height {height} is too small for {len(blocks)} pooling stages")
        self.cnn = nn.Sequential(*stages)
        self.feature_dim = cin * h
        rnn_cls = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}.get(rnn_type.upper())
        if rnn_cls is None:
            raise ValueError(f"rnn_type must be LSTM, GRU or RNN, not {rnn_type!r}")
        self.rnn = rnn_cls(self.feature_dim, rnn_hidden, num_layers=rnn_layers, bidirectional=True,
                           batch_first=True, dropout=dropout if rnn_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * rnn_hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv feature map (B, C', h, T)."""
        return self.cnn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x)
        b, c, h, t = f.shape
        seq = f.permute(0, 3, 1, 2).reshape(b, t, c * h)
        seq, _ = self.rnn(seq)
        return torch.log_softmax(self.fc(self.dropout(seq)).float(), dim=-1)

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Time steps produced for images of the given widths (before batch padding)."""
        w = widths.clone()
        for b in self.blocks:
            if b.kernel != 3:
                w = w - (b.kernel - 1)
            if b.pool:
                w = torch.div(w, b.pool[1], rounding_mode="floor")
        return w.clamp(min=1)

    def output_length(self, width: int) -> int:
        return int(self.output_lengths(torch.tensor([width]))[0])
