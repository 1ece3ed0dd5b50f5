"""Fine-tuning (``--init MODEL``): what is taken from the init model, and how its weights are carried over.

The init model's architecture and preprocessing win: of the user's own settings only ``data.height``
(within what the conv stack maps to the same feature size), ``model.dropout``, wider conv stages
(``model.channels``, each at least the init model's) and a larger RNN (``model.rnn_hidden``) may differ (the
init model is grown into them, starting out reading as it did, :mod:`crnn.models.widen`); any other
``model.*`` key that differs is an error rather than silently ignored. Training images that all share one
height above the init model's, within what its weights fit, are read at that height (:func:`native_height`).
The charset keeps the init model's characters by default (``data.init_charset``), and the output layer's
rows follow the characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from crnn.charset import BLANK, Charset
from crnn.checkpoint import load_checkpoint
from crnn.config import Config, ModelConfig
from crnn.data.images import Preprocess
from crnn.data.sources import Source, common_height
from crnn.errors import ConfigError, CrnnError
from crnn.inference.zoo import resolve_model_path
from crnn.models.geometry import Block, feature_height
from crnn.models.presets import PRESETS, preset_blocks
from crnn.models.widen import check_growable, check_rnn_growable, rnn_hidden, widen_state_dict
from crnn.training.data_setup import prepared_settings

FINE_TUNE_MAY_CHANGE = frozenset({"data.height", "model.dropout"})
"""What a fine-tune may set differently from its --init model; every other model key is its architecture."""


@dataclass
class InitModel:
    """The ``--init`` checkpoint a run starts from."""

    weights: dict[str, torch.Tensor]
    charset: Charset
    preprocess: Preprocess
    blocks: list[Block]
    """The init model's conv stages (narrower than the run's when ``model.channels`` grows them)."""


def _arch_value(model_cfg: ModelConfig, name: str) -> Any:
    """A model setting as the network sees it: a preset's own channel list written out equals ``None``,
    and an RNN field left unset is the preset's."""
    value = getattr(model_cfg.resolved(), name)
    if name == "channels" and value is None and model_cfg.arch in PRESETS:
        return [b.out for b in PRESETS[model_cfg.arch]]
    if name == "rnn_type":
        return str(value).upper()
    return value


def apply_init(cfg: Config, init: str, explicit: set[str], say: Callable[[str], None]) -> InitModel:
    """Load the init model and make ``cfg`` describe its network and preprocessing (in place)."""
    ckpt = load_checkpoint(resolve_model_path(init))
    init_cfg = Config.from_dict(ckpt["config"])
    init_blocks = preset_blocks(init_cfg.model.arch, init_cfg.model.channels)
    asked = cfg.model
    grown = "model.channels" in explicit and _grows(asked, init_cfg.model)
    grown_rnn = "model.rnn_hidden" in explicit and _grows_rnn(asked, init_cfg.model)
    for key in sorted(k for k in explicit if k.startswith("model.") and k not in FINE_TUNE_MAY_CHANGE):
        if (key == "model.channels" and grown) or (key == "model.rnn_hidden" and grown_rnn):
            continue
        mine, theirs = _arch_value(asked, key[6:]), _arch_value(init_cfg.model, key[6:])
        if mine != theirs:
            raise ConfigError(f"{key}={mine!r} differs from the --init model's {theirs!r}: fine-tuning keeps "
                              "the init model's architecture (drop the setting, or train without --init)")
    cfg.model = init_cfg.model.resolved()
    if "model.dropout" in explicit:
        cfg.model.dropout = asked.dropout
    if grown:
        cfg.model.channels = list(asked.channels or [])
        say(f"growing the init model's conv stages from {[b.out for b in init_blocks]} to {cfg.model.channels} "
            "channels: each new channel starts as a copy of an old one, so the wider model starts out reading as "
            "the init model does (model.channels)")
    if grown_rnn:
        cfg.model.rnn_hidden = asked.rnn_hidden
        say(f"growing the init model's RNN from {rnn_hidden(ckpt['model'])} to {asked.rnn_hidden} hidden units: "
            "each new unit starts as a copy of an old one, so the larger model starts out reading as the init model "
            "does (model.rnn_hidden)")
    pre = Preprocess.from_dict(ckpt["preprocess"])
    if "data.height" in explicit and cfg.data.height != pre.height:
        say(f"fine-tuning at height {cfg.data.height} (the init model was trained at {pre.height})")
    else:
        cfg.data.height = pre.height
    cfg.data.channels = pre.channels
    cfg.data.min_width = pre.min_width
    return InitModel(ckpt["model"], Charset(ckpt["charset"]), pre, init_blocks)


def _grows(asked: ModelConfig, init: ModelConfig) -> bool:
    """Whether ``asked``'s conv widths grow ``init``'s (same preset, other widths); widths that cannot grow them
    (:func:`crnn.models.widen.check_growable`: narrower, another stage count, the mobile stack) are an error."""
    mine, theirs = _arch_value(asked, "channels"), _arch_value(init, "channels")
    if mine == theirs or asked.arch != init.arch:
        return False
    try:
        check_growable(preset_blocks(init.arch, theirs), preset_blocks(asked.arch, mine))
    except ValueError as e:
        raise ConfigError(f"model.channels={mine} cannot grow the --init model's {theirs}: {e}") from None
    return True


def _grows_rnn(asked: ModelConfig, init: ModelConfig) -> bool:
    """Whether ``asked``'s RNN hidden size grows ``init``'s; a smaller one is an error."""
    mine, theirs = _arch_value(asked, "rnn_hidden"), _arch_value(init, "rnn_hidden")
    if mine == theirs:
        return False
    try:
        check_rnn_growable(int(theirs), int(mine))
    except ValueError as e:
        raise ConfigError(f"model.rnn_hidden={mine} cannot grow the --init model's {theirs}: {e}") from None
    return True


def native_height(cfg: Config, init: InitModel, sources: list[Source], explicit: set[str],
                  say: Callable[[str], None]) -> None:
    """Fine-tune at the training images' own height when they share one above the init model's and its
    weights fit it (``cfg.data.height``, in place); ``data.height`` given, or a prepared one, wins.

    Measured on the seed-parity CAPTCHAs (160x60; BENCHMARKS.md): fine-tuning ``builtin:en`` (48 px) at
    60 px read 89.8 % of the held-out images against 87.0 % at 48, and 91.6 % against 89.0 % from the
    model before it: downscaling to 48 px blurs what tells ``0`` from ``O``. Upscaling adds nothing, so
    images lower than the init model's height keep its height.
    """
    if "data.height" in explicit or prepared_settings(sources, "height"):
        return
    own, base = common_height(sources), init.preprocess.height
    if own is None or own <= base:
        return
    blocks = preset_blocks(cfg.model.arch, cfg.model.channels)
    rows = feature_height(blocks, base)
    top = base
    while feature_height(blocks, top + 1) == rows:
        top += 1
    if own <= top:
        cfg.data.height = own
        say(f"fine-tuning at the training images' own height, {own} px (the init model was trained at {base}; "
            f"its weights fit {base}-{top} px); set data.height={base} to keep its height")
    else:
        say(f"the training images are {own} px high: fine-tuning reads them at the init model's {base} px "
            f"(its weights fit up to {top} px)")


def fine_tune_charset(labels: Charset, init: Charset, mode: str, say: Callable[[str], None]) -> Charset:
    """The charset of a fine-tune: the init model's plus the labels' new characters (``keep``), or only the
    labels' (``restrict``); says exactly what was kept, added and dropped."""
    added = "".join(c for c in labels.chars if c not in init)
    if mode == "keep":
        charset = Charset(init.chars + added)
        dropped = ""
    else:
        charset = labels
        dropped = "".join(c for c in init.chars if c not in labels)
    kept = len(init) - len(dropped)
    say(f"fine-tuning charset ({len(charset)} characters): kept {kept} of the init model's {len(init)}"
        + (f", added {len(added)} from the training labels {added!r}" if added else ", added none")
        + (f", dropped {len(dropped)} {dropped!r} (data.init_charset=restrict)" if dropped else
           ", dropped none" + (" (data.init_charset=keep; restrict to read only the labels' characters)"
                               if mode == "keep" and len(charset) > len(labels) else "")))
    return charset


def transfer_weights(model: torch.nn.Module, init: InitModel, charset: Charset, height: int,
                     say: Callable[[str], None], seed: int = 0) -> None:
    """Load the init weights into ``model`` (built for input ``height``), grown into its wider conv stages
    and larger RNN when it has them (``seed`` draws which channels are copied and their noise); rows of the output layer
    follow the characters both charsets share."""
    height_note = (f"; its weights do not fit data.height={height}, leave data.height unset to use "
                   f"its {init.preprocess.height}" if height != init.preprocess.height else "")
    own = model.state_dict()
    weights = init.weights
    if list(model.blocks) != init.blocks or rnn_hidden(own) != rnn_hidden(weights):  # type: ignore[arg-type]
        weights = widen_state_dict(weights, init.blocks, model, seed=seed)
    skipped = []
    for k, v in weights.items():
        if k in own and own[k].shape == v.shape and not k.startswith("fc."):
            own[k] = v
        elif not k.startswith("fc."):
            skipped.append(k)
    if skipped:
        raise CrnnError(f"--init model has a different architecture (first mismatch: {skipped[0]}){height_note}")
    shared = [c for c in charset.chars if c in init.charset]
    for k in ("fc.weight", "fc.bias"):
        src = weights[k]
        dst = own[k].clone()
        dst[BLANK] = src[BLANK]
        for c in shared:
            dst[charset.index(c)] = src[init.charset.index(c)]
        own[k] = dst
    model.load_state_dict(own)
    if charset != init.charset:
        new = [c for c in charset.chars if c not in init.charset]
        say(f"fine-tuning: output layer rebuilt for the new charset: the rows of the {len(shared)} characters "
            f"it shares with the init model are copied{f', {len(new)} new rows start fresh' if new else ''}; "
            "all other layers kept")


def freeze_stages(model: torch.nn.Module, count: int, say: Callable[[str], None]) -> None:
    """Keep the weights of the CNN's first ``count`` stages fixed (``train.freeze``), before the optimiser is
    built: it then holds only what is trained, and a resumed run's optimiser state matches.

    Why only the first stages: they hold edge and stroke detectors that any text image needs, and skipping
    their backward pass is what makes a step cheaper; the later stages and the RNN adapt to the new task.
    Their BatchNorm layers still update their running statistics in training mode, so they follow the new
    images' contrast and scale (what a fine-tune at another height or on other ink needs) at no extra cost.
    """
    stages = list(model.cnn)  # type: ignore[arg-type]
    if count > len(stages):
        raise ConfigError(f"train.freeze={count}: the {len(stages)}-stage CNN has only {len(stages)} stages to freeze")
    frozen = 0
    for stage in stages[:count]:
        for p in stage.parameters():
            p.requires_grad_(False)
            frozen += p.numel()
    total = sum(p.numel() for p in model.parameters())
    say(f"train.freeze={count}: the CNN's first {count} of {len(stages)} stages keep the init model's weights "
        f"({frozen:,} of {total:,} parameters); their BatchNorm statistics still follow the new images")
