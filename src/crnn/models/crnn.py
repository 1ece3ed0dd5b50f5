"""The CRNN of Shi, Bai and Yao (arXiv 1507.05717), and its smaller cousins.

A stack of conv blocks turns a (B, C, H, W) image into a (B, C', h, W/4) feature
map; each column becomes one time step (map-to-sequence: channels x remaining
height are flattened into the feature vector), a bidirectional RNN reads the
sequence, and a linear layer gives per-step class log-probabilities for CTC.

The model owns its geometry and its loss, so nothing else recomputes them:
:meth:`CRNN.output_lengths` (each image's own number of time steps, from its real
width rather than the padded batch's), :meth:`CRNN.frame_centres` (where each step
looks), :func:`ctc_loss` (the one CTC loss; class ``crnn.charset.BLANK`` is the blank),
and one :meth:`CRNN.forward` that gives log-probs, and with widths the lengths, and
with targets the per-sample loss.
"""

from __future__ import annotations

from typing import NamedTuple, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn.charset import BLANK
from crnn.models import geometry
from crnn.models.geometry import Block
from crnn.models.presets import RNN_DEFAULTS, ModelSpec, preset_blocks


class CTCOutput(NamedTuple):
    """What :meth:`CRNN.forward` returns when given widths."""

    log_probs: torch.Tensor
    """(B, T, C) float32 log-softmax; class ``BLANK`` is the CTC blank."""
    lengths: torch.Tensor
    """(B,) valid time steps of each image."""
    loss: torch.Tensor | None = None
    """(B,) CTC negative log-likelihood of each target (``zero_infinity``), when targets were given."""


def ctc_loss(log_probs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
             reduction: str = "none", zero_infinity: bool = True) -> torch.Tensor:
    """CTC loss of (B, T, C) log-probs against concatenated ``targets``.

    ``zero_infinity``: an impossible alignment (a label longer than its image's time steps) gives 0, not inf,
    so one bad sample cannot turn a batch into NaN.
    """
    return F.ctc_loss(log_probs.float().transpose(0, 1), targets, lengths, target_lengths, blank=BLANK,
                      reduction=reduction, zero_infinity=zero_infinity)


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
    """Conv stack -> columns -> bidirectional RNN -> linear -> log-softmax."""

    def __init__(self, blocks: list[Block], num_classes: int, in_channels: int = 1, height: int = 32,
                 rnn_type: str = "GRU", rnn_layers: int = 2, rnn_hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.blocks = list(blocks)
        self.width_steps = geometry.width_steps(self.blocks)
        stages, cin = [], in_channels
        for b in blocks:
            stages.append(_conv_block(cin, b))
            cin = b.out
        h = geometry.feature_height(blocks, height)
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

    @overload
    def forward(self, images: torch.Tensor) -> torch.Tensor: ...

    @overload
    def forward(self, images: torch.Tensor, widths: torch.Tensor, targets: torch.Tensor | None = None,
                target_lengths: torch.Tensor | None = None) -> CTCOutput: ...

    def forward(self, images, widths=None, targets=None, target_lengths=None):
        """(B, C, H, W) images -> (B, T, C) log-probs; with ``widths`` (B,) a :class:`CTCOutput` with each
        image's lengths, and with ``targets`` / ``target_lengths`` each sample's CTC loss too.

        The images-only form is what exports trace; training calls the full form through DDP's wrapper,
        so the loss is part of the wrapped forward.
        """
        f = self.cnn(images)
        b, c, h, t = f.shape
        seq = f.permute(0, 3, 1, 2).reshape(b, t, c * h)
        seq, _ = self.rnn(seq)
        # The classifier and the softmax stay in fp32 under mixed precision: bf16 logits carry 8 bits of
        # mantissa (steps of 0.06 at a logit of 10), too coarse for the fine margins CTC trains on; the layer
        # is a sliver of the arithmetic.
        with torch.autocast(seq.device.type, enabled=False):
            log_probs = torch.log_softmax(self.fc(self.dropout(seq.float())), dim=-1)
        if widths is None:
            return log_probs
        lengths = self.output_lengths(widths)
        if targets is None:
            return CTCOutput(log_probs, lengths)
        lengths = lengths.clamp(max=log_probs.shape[1])
        return CTCOutput(log_probs, lengths, ctc_loss(log_probs, lengths, targets, target_lengths))

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        """Time steps produced for images of the given widths (before batch padding)."""
        return geometry.output_lengths(widths, self.width_steps)

    def output_length(self, width: int) -> int:
        return geometry.output_length(width, self.width_steps)

    def frame_centres(self, width: int, count: int | None = None) -> np.ndarray:
        """Receptive-field centre, in input pixels, of each time step of an image ``width`` pixels wide."""
        return geometry.frame_centres(width, self.width_steps, count)


def build_model(cfg: ModelSpec, num_classes: int, in_channels: int = 1, height: int = 32) -> CRNN:
    """Build the CRNN described by ``cfg``; RNN settings left unset are the preset's (:data:`RNN_DEFAULTS`).

    >>> from crnn.config import ModelConfig
    >>> m = build_model(ModelConfig(arch="paper"), num_classes=37)
    >>> type(m.rnn).__name__, m.rnn.hidden_size
    ('LSTM', 256)
    """
    blocks = preset_blocks(cfg.arch, cfg.channels)
    rnn = dict(RNN_DEFAULTS[cfg.arch])
    for key in rnn:
        if getattr(cfg, key) is not None:
            rnn[key] = getattr(cfg, key)
    return CRNN(blocks, num_classes, in_channels, height, str(rnn["rnn_type"]), int(rnn["rnn_layers"]),
                int(rnn["rnn_hidden"]), cfg.dropout)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
