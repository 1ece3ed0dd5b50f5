"""Model presets and the one factory that builds them from a :class:`~crnn.config.ModelConfig`.

| preset | blocks (channels, pool)                                | RNN default       | params* |
|--------|--------------------------------------------------------|-------------------|---------|
| paper  | 64 p, 128 p, 256, 256 p21, 512, 512 p21, 512 (2x2)     | BiLSTM 256 x 2    | ~8.7 M  |
| half   | the paper's at half width                              | BiLSTM 128 x 2    | ~2.2 M  |
| small  | 16 p, 32 p, 64 p21, 64 p21, 128 p21                    | BiGRU 128 x 2     | ~0.6 M  |
| mobile | 16 p, then depthwise-separable 32 p, 64 p21, 96 p21, 128 p21 | BiGRU 64 x 1 | ~0.1 M  |

(* with a 37-class output; ``p`` pools 2x2, ``p21`` pools height only.)
Presets fix the conv stack; RNN type, layers, hidden size and dropout come from the config.
"""

from __future__ import annotations

from crnn.config import ModelConfig
from crnn.models.crnn import CRNN, Block

P, P21 = (2, 2), (2, 1)

PRESETS: dict[str, list[Block]] = {
    "paper": [Block(64, P), Block(128, P), Block(256), Block(256, P21), Block(512), Block(512, P21),
              Block(512, kernel=2)],
    "half": [Block(32, P), Block(64, P), Block(128), Block(128, P21), Block(256), Block(256, P21),
             Block(256, kernel=2)],
    "small": [Block(16, P), Block(32, P), Block(64, P21), Block(64, P21), Block(128, P21)],
    "mobile": [Block(16, P), Block(32, P, True), Block(64, P21, True), Block(96, P21, True), Block(128, P21, True)],
}

# The RNN each preset is designed around; used by `crnn train --set model.arch=paper` etc.
# only where the user did not set the RNN fields (see ModelConfig defaults).
RNN_DEFAULTS: dict[str, dict] = {
    "paper": {"rnn_type": "LSTM", "rnn_hidden": 256, "rnn_layers": 2},
    "half": {"rnn_type": "LSTM", "rnn_hidden": 128, "rnn_layers": 2},
    "small": {"rnn_type": "GRU", "rnn_hidden": 128, "rnn_layers": 2},
    "mobile": {"rnn_type": "GRU", "rnn_hidden": 64, "rnn_layers": 1},
}


def build_model(cfg: ModelConfig, num_classes: int, in_channels: int = 1, height: int = 32) -> CRNN:
    """Build the CRNN described by ``cfg``.

    >>> m = build_model(ModelConfig(arch="small"), num_classes=37)
    >>> sum(p.numel() for p in m.parameters()) > 100_000
    True
    """
    if cfg.arch not in PRESETS:
        raise ValueError(f"model.arch must be one of {', '.join(PRESETS)}, not {cfg.arch!r}")
    blocks = PRESETS[cfg.arch]
    if cfg.channels is not None:
        if len(cfg.channels) != len(blocks):
            raise ValueError(f"model.channels needs {len(blocks)} values for arch {cfg.arch!r}, got {cfg.channels}")
        blocks = [Block(c, b.pool, b.separable, b.kernel) for c, b in zip(cfg.channels, blocks)]
    return CRNN(blocks, num_classes, in_channels, height, cfg.rnn_type, cfg.rnn_layers, cfg.rnn_hidden, cfg.dropout)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["CRNN", "Block", "PRESETS", "build_model", "count_parameters"]
