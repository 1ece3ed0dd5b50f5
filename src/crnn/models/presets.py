"""The model presets: each one's conv stack and the RNN it is designed around. Torch-free, so the
config can check a preset name without loading PyTorch.

| preset | blocks (channels, pool)                                | RNN               | params* |
|--------|--------------------------------------------------------|-------------------|---------|
| paper  | 64 p, 128 p, 256, 256 p21, 512, 512 p21, 512 (2x2)     | BiLSTM 256 x 2    | ~8.7 M  |
| half   | the paper's at half width                              | BiLSTM 128 x 2    | ~2.2 M  |
| small  | 16 p, 32 p, 64 p21, 64 p21, 128 p21                    | BiGRU 128 x 2     | ~0.6 M  |
| mobile | 16 p, then depthwise-separable 32 p, 64 p21, 96 p21, 128 p21 | BiGRU 64 x 1 | ~0.1 M  |

(* with a 37-class output; ``p`` pools 2x2, ``p21`` pools height only.)
"""

from __future__ import annotations

from typing import Protocol

from crnn.models.geometry import Block

P, P21 = (2, 2), (2, 1)

PRESETS: dict[str, list[Block]] = {
    "paper": [Block(64, P), Block(128, P), Block(256), Block(256, P21), Block(512), Block(512, P21),
              Block(512, kernel=2)],
    "half": [Block(32, P), Block(64, P), Block(128), Block(128, P21), Block(256), Block(256, P21),
             Block(256, kernel=2)],
    "small": [Block(16, P), Block(32, P), Block(64, P21), Block(64, P21), Block(128, P21)],
    "mobile": [Block(16, P), Block(32, P, True), Block(64, P21, True), Block(96, P21, True), Block(128, P21, True)],
}

RNN_DEFAULTS: dict[str, dict[str, str | int]] = {
    "paper": {"rnn_type": "LSTM", "rnn_hidden": 256, "rnn_layers": 2},
    "half": {"rnn_type": "LSTM", "rnn_hidden": 128, "rnn_layers": 2},
    "small": {"rnn_type": "GRU", "rnn_hidden": 128, "rnn_layers": 2},
    "mobile": {"rnn_type": "GRU", "rnn_hidden": 64, "rnn_layers": 1},
}
"""The RNN each preset is designed around: what ``ModelConfig`` fields left unset (``None``) become."""


def preset_blocks(arch: str, channels: list[int] | None = None) -> list[Block]:
    """The conv stack of preset ``arch``, with its channel widths replaced by ``channels`` when given."""
    if arch not in PRESETS:
        raise ValueError(f"model.arch must be one of {', '.join(PRESETS)}, not {arch!r}")
    blocks = PRESETS[arch]
    if channels is None:
        return list(blocks)
    if len(channels) != len(blocks):
        raise ValueError(f"model.channels needs {len(blocks)} values for arch {arch!r}, got {channels}")
    return [Block(c, b.pool, b.separable, b.kernel) for c, b in zip(channels, blocks)]


class ModelSpec(Protocol):
    """What :func:`crnn.models.crnn.build_model` reads: a :class:`crnn.config.ModelConfig` (named by its fields
    here, so the model does not import the config)."""

    arch: str
    channels: list[int] | None
    rnn_type: str | None
    rnn_layers: int | None
    rnn_hidden: int | None
    dropout: float

