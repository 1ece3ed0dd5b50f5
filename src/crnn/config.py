"""Every hyper-parameter in one typed tree.

A run is described by a :class:`Config`: read from TOML or YAML, changed from the
command line with ``--set section.key=value``, written into the run folder as
``config.toml`` and into every checkpoint, so evaluation, prediction and export
never guess how a model was trained.

>>> cfg = apply_overrides(Config(), ["model.rnn_type=LSTM", "train.lr=1e-3"])
>>> cfg.model.rnn_type, cfg.train.lr
('LSTM', 0.001)
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crnn.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    """How images become tensors and labels become targets."""

    height: int = 48
    """Every image is resized to this height, keeping its aspect ratio. 48 rather than the paper's 32:
    on the seed-parity benchmark it kept the detail that tells 0 from O and 8 from B (85.6 % against
    77-82 % held-out in the same 10 minutes, see BENCHMARKS.md), at 2.25x the arithmetic per image.
    A fine-tune (``--init``) uses the init model's height unless this is set, or the training images all
    share one taller height that its weights fit (``crnn.training.finetune.native_height``)."""
    channels: int = 1
    """1 = grayscale, 3 = RGB."""
    min_width: int = 16
    """Narrower images are padded (never stretched) to this width."""
    max_width: int = 4096
    """Training only, a memory bound: a training image wider than this after resizing is skipped and counted
    in the data report (never squeezed). Evaluation and prediction read every image at its full width."""
    charset: str | None = None
    """The alphabet. ``None`` builds it from the training labels (and, fine-tuning, see ``init_charset``)."""
    rehearsal: float = 0.5
    """Fine-tuning: when the charset holds characters the training labels lack (kept from the init model),
    add this many synthetic lines per training sample each epoch, random strings over the whole charset, so
    the model keeps reading what it knew (a fine-tune on capitals alone forgets lower case within an epoch).
    0 turns it off; training from scratch never rehearses. Measured on a toy model fine-tuned 2 epochs on
    labels without two of its characters: it still read 0, 12, 23 and 29 of 31 words holding them with
    0, 0.2, 0.5 and 1.0."""
    rehearsal_synth: str = ""
    """A ``crnn synth`` config (TOML) the rehearsal lines are drawn with: its fonts, exclusions, font hold-out
    and look; their text stays random strings over the charset, their height and channels the model's.
    Empty: the synth defaults, every installed font. Set it to the config the training data was drawn with
    when that config holds fonts out for a benchmark: the shipped model's stages 6-9 rehearsed in every
    installed font, the held-out families of the printed-word benchmark too."""
    init_charset: str = "keep"
    """Fine-tuning (``--init``) without a ``charset``: ``keep`` the init model's characters and add the
    training labels' new ones, so a model fine-tuned on capitals still reads lower case; ``restrict`` the
    output to the training labels' characters (what a CAPTCHA reader wants: it can never answer ``o``
    for ``O``)."""
    unknown: str = "skip"
    """Samples whose label has characters outside ``charset``: ``skip`` them (counted), or ``error``."""
    label_pattern: str | None = None
    """Regex with one group, applied to file stems to extract the label (``(.+)_\\d+`` for ``HELLO_3.png``)."""
    val_fraction: float = 0.05
    """Share of the training data held out for validation when no ``--val`` is given."""
    max_val: int = 2000
    workers: int = 0
    """Data-loader processes. 0 decodes in the training process (best for small, cached sets)."""
    cache: bool = True
    """Decode and resize every training image once and keep it in memory (uint8)."""
    synth_epoch_size: int = 20000
    """With ``--train synth:CONFIG``: freshly rendered samples per epoch (never repeated)."""
    max_pixels: int = 40_000_000
    """Images larger than this are refused as possible decompression bombs."""


@dataclass
class ModelConfig:
    """The network. ``arch`` picks a preset; the other fields override it when set.

    The RNN fields left unset (``None``) are the preset's own (``crnn.models.presets.RNN_DEFAULTS``:
    the paper's BiLSTM 256 x 2 for ``paper``, BiGRU 128 x 2 for ``small``); :meth:`resolved` writes them
    out, as every saved config and checkpoint holds them.
    """

    arch: str = "small"
    """``small`` (default, ~0.6 M params), ``paper`` (Shi et al., ~8.7 M), ``half`` (~2.2 M), ``mobile`` (depthwise)."""
    channels: list[int] | None = None
    """Width of each conv block; ``None`` keeps the preset's."""
    rnn_type: str | None = None
    """``LSTM``, ``GRU`` or ``RNN``; ``None``: the preset's."""
    rnn_layers: int | None = None
    """``None``: the preset's."""
    rnn_hidden: int | None = None
    """``None``: the preset's."""
    dropout: float = 0.1
    """Dropout between recurrent layers and before the classifier."""

    def resolved(self) -> ModelConfig:
        """A copy with the RNN fields left unset filled in from the preset (an unknown preset is kept as it
        is, for :func:`validate` to name).

        >>> ModelConfig(arch="paper").resolved().rnn_type, ModelConfig(arch="small", rnn_hidden=64).resolved()
        ('LSTM', ModelConfig(arch='small', channels=None, rnn_type='GRU', rnn_layers=2, rnn_hidden=64, dropout=0.1))
        """
        from crnn.models.presets import RNN_DEFAULTS

        preset = RNN_DEFAULTS.get(self.arch, {})
        unset: dict[str, Any] = {k: v for k, v in preset.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **unset)


@dataclass
class AugmentConfig:
    """Random, label-preserving distortions for text lines, applied on the batch (CPU or GPU)."""

    enabled: bool = True
    rotate: float = 2.0
    """Max rotation in degrees."""
    shear: float = 0.15
    scale: float = 0.08
    translate: float = 0.04
    """Max shift as a fraction of the image size."""
    elastic: float = 0.0
    """Max local displacement as a fraction of the image height: a smooth random bend with control points
    every half height, so characters of one line warp differently (handwriting). 0 = off."""
    stroke: float = 0.0
    """Max change of stroke width: each image's ink is thickened or thinned by a random share, up to this, of a
    one-pixel dilation or erosion (pens and writers differ in weight). 0 = off: on the handwritten-digit dev split
    1.0 read 92.0 % against 91.7 % (BENCHMARKS.md), inside the noise, where ``elastic`` gave +2 to +3 points."""
    blur_prob: float = 0.15
    noise_std: float = 0.04
    contrast: float = 0.3
    """Max relative change of contrast and brightness."""
    invert_prob: float = 0.0


@dataclass
class TrainConfig:
    """Optimisation, schedule and bookkeeping."""

    epochs: int = 1000
    """Upper bound; with ``time_budget`` the budget usually ends the run first."""
    time_budget: float | None = None
    """Seconds of training (``--time-budget 10m``). The LR schedule follows elapsed time when set."""
    batch_size: int = 32
    optimizer: str = "adamw"
    """``adamw`` or ``adam``."""
    lr: float = 3e-3
    weight_decay: float = 0.01
    schedule: str = "onecycle"
    """``onecycle`` (warm-up then cosine), ``cosine``, ``constant``, or ``step``
    (the original project's: times ``gamma`` every ``step_epochs``)."""
    warmup: float = 0.1
    """Share of the run spent warming up (onecycle). After it the LR stays at its peak until the model reads
    something (batch CER <= 0.7: off CTC's blank plateau); only then does the annealing start, over what is
    left of the run (``crnn.training.progress``)."""
    output_bias: str = "prior"
    """How a model trained from scratch starts its output layer's bias: ``prior``, each class's log share of
    the time steps in the training labels (the blank takes the steps left over; ``crnn.training.output_prior``),
    or ``zero``, PyTorch's own draw. On 2,000 seed-parity CAPTCHAs (``small``, one thread, 590 steps, two
    seeds) ``prior`` left CTC's blank plateau at steps 69 and 66 where ``zero`` left it at 425 or not at all,
    and read 84.0 / 87.2 % of the held-out set against 54.2 / 0 % (BENCHMARKS.md). A fine-tune keeps its
    init model's bias."""
    step_epochs: int = 20
    gamma: float = 0.8
    grad_clip: float = 5.0
    """Clip the gradient norm to this (0 = no clipping)."""
    freeze: int = 0
    """Fine-tuning (``--init``): keep the weights of the CNN's first N stages as the init model has them
    (0 = train every layer). Nothing is back-propagated into them, so each step is cheaper: on one core a
    ``small`` step on 60 px CAPTCHAs takes 18 % less time with 2 stages frozen and 25 % less with 3. Their
    BatchNorm statistics still follow the new images (``crnn.training.finetune.freeze_stages``). Off by
    default because on a task far from the init model's it costs more than the extra passes give: the
    seed-parity CAPTCHA fine-tune from ``builtin:en`` (one core, 10 minutes, the same images) read 89.6 % with 0
    (90.2 % in a second run), 87.8 % with 2 and 83.0 % with 3 (BENCHMARKS.md); it is for data close to what the
    init model read."""
    ema: float = 0.998
    """Exponential moving average of the weights used for validation and saved as the model (0 = off)."""
    seed: int = 0
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1`` ..."""
    threads: int = 0
    """CPU threads for torch. 0 = measure: time a training step with torch's current thread count and with
    one, and keep the faster (on a busy machine one thread can beat two several times over)."""
    amp: bool | str = "auto"
    """Mixed precision: bf16 on CPU, fp16/bf16 on CUDA. ``auto`` turns it on where the hardware runs bf16 fast
    (a CPU with AMX, a CUDA GPU with bf16) and off elsewhere (on other CPUs bf16 is slower than fp32); true or
    false force it. On the dev CPU's AMX the `small` preset trains 1.3-1.4x faster with it and reads the same
    (seed parity on one core: 88.4 % against 88.8 % in fp32, within the run-to-run spread), wider nets up to
    3x (BENCHMARKS.md)."""
    log_every: int = 25
    """Write a loss line to train.log every N iterations (the original's 25)."""
    max_bad_steps: int = 50
    """Stop with an error after this many consecutive non-finite losses."""
    channels_last: bool = True
    tensorboard: bool = False
    """Also log each epoch's metrics to ``RUN/tensorboard`` (needs the tensorboard package)."""
    checkpoint_every: float = 120.0
    """Also write last.pt every this many seconds inside long epochs, so a killed run loses little (0 = at
    epoch ends only)."""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return _build(cls, d, "")


LIMITS: dict[str, int] = {
    "data.height": 256,
    "data.max_width": 65_536,
    "data.max_val": 100_000,
    "data.workers": 64,
    "data.synth_epoch_size": 10_000_000,
    "data.max_pixels": 200_000_000,
    "model.channels": 1024,
    "model.channels.count": 12,
    "model.rnn_layers": 8,
    "model.rnn_hidden": 1024,
    "train.epochs": 1_000_000,
    "train.batch_size": 1024,
    "train.seed": 2**32 - 1,
}
"""Upper bounds of the size-like keys, so that no single setting can outgrow a 24 GiB machine.

Each is far above what any preset or recipe uses (the paper's model: height 32, conv widths up to 512,
BiLSTM 256 x 2), and below the value at which that key alone fills memory: ``data.height = 100000``
made every cached training image about 100,000 x 300,000 pixels; ``rnn_hidden = 1024`` with 8 layers
is about 100 M parameters (with AdamW's state, under 2 GB); a batch of 1024 lines of 48 x 512 px is
1.6 GB in the first conv stage alone. The bounds hold one key at a time: the largest values together
(a batch of 1024 at height 256) can still outgrow a small machine. ``data.max_width``
matches the widest image inference accepts (``crnn.data.images.MAX_MODEL_WIDTH``)."""

_SECTION = {DataConfig: "data", ModelConfig: "model", AugmentConfig: "augment", TrainConfig: "train"}


def validate(cfg: Config) -> Config:
    """Check every value's range and choice; raise :class:`ConfigError` naming the first bad one.

    The model's RNN fields left unset are filled in from its preset first (:meth:`ModelConfig.resolved`).

    Types are checked when a config is read; this catches what a type cannot say
    (``train.lr = -1``, ``data.channels = 2``, ``data.val_fraction = 1.5``, ``train.lr = inf``,
    ``data.height = 100000``) before any data is loaded, instead of a traceback from deep inside
    PyTorch, or the kernel's OOM killer, minutes later. Size-like keys are bounded by :data:`LIMITS`.
    """
    from crnn.models.presets import PRESETS

    cfg.model = cfg.model.resolved()
    for section in (cfg.data, cfg.model, cfg.augment, cfg.train):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{_SECTION[type(section)]}.{f.name} must be a finite number, got {value!r}")
    d, m, a, t = cfg.data, cfg.model, cfg.augment, cfg.train
    L = LIMITS
    widths = m.channels or []
    rules: list[tuple[str, Any, bool, str]] = [
        ("data.height", d.height, 8 <= d.height <= L["data.height"], f"in [8, {L['data.height']}]"),
        ("data.channels", d.channels, d.channels in (1, 3), "1 (grayscale) or 3 (RGB)"),
        ("data.min_width", d.min_width, 1 <= d.min_width <= L["data.max_width"],
         f"in [1, {L['data.max_width']}]"),
        ("data.max_width", d.max_width, d.min_width <= d.max_width <= L["data.max_width"],
         f"in [data.min_width ({d.min_width}), {L['data.max_width']}]"),
        ("data.unknown", d.unknown, d.unknown in ("skip", "error"), "'skip' or 'error'"),
        ("data.rehearsal", d.rehearsal, 0 <= d.rehearsal <= 4, "in [0, 4]"),
        ("data.init_charset", d.init_charset, d.init_charset in ("keep", "restrict"), "'keep' or 'restrict'"),
        ("data.val_fraction", d.val_fraction, 0 <= d.val_fraction < 1, "in [0, 1)"),
        ("data.max_val", d.max_val, 0 <= d.max_val <= L["data.max_val"], f"in [0, {L['data.max_val']}]"),
        ("data.workers", d.workers, 0 <= d.workers <= L["data.workers"], f"in [0, {L['data.workers']}]"),
        ("data.synth_epoch_size", d.synth_epoch_size, 1 <= d.synth_epoch_size <= L["data.synth_epoch_size"],
         f"in [1, {L['data.synth_epoch_size']:,}]"),
        ("data.max_pixels", d.max_pixels, 1 <= d.max_pixels <= L["data.max_pixels"],
         f"in [1, {L['data.max_pixels']:,}]"),
        ("model.arch", m.arch, m.arch in PRESETS, f"one of {', '.join(PRESETS)}"),
        ("model.channels", m.channels, m.channels is None or (0 < len(widths) <= L["model.channels.count"]
                                                             and 1 <= min(widths)
                                                             and max(widths) <= L["model.channels"]),
         f"unset or a list of 1 to {L['model.channels.count']} widths in [1, {L['model.channels']}]"),
        ("model.rnn_type", m.rnn_type, str(m.rnn_type).upper() in ("LSTM", "GRU", "RNN"), "LSTM, GRU or RNN"),
        ("model.rnn_layers", m.rnn_layers, m.rnn_layers is not None and 1 <= m.rnn_layers <= L["model.rnn_layers"],
         f"in [1, {L['model.rnn_layers']}]"),
        ("model.rnn_hidden", m.rnn_hidden, m.rnn_hidden is not None and 1 <= m.rnn_hidden <= L["model.rnn_hidden"],
         f"in [1, {L['model.rnn_hidden']}]"),
        ("model.dropout", m.dropout, 0 <= m.dropout < 1, "in [0, 1)"),
        ("augment.rotate", a.rotate, 0 <= a.rotate <= 90, "in [0, 90] degrees"),
        ("augment.shear", a.shear, 0 <= a.shear <= 1, "in [0, 1]"),
        ("augment.scale", a.scale, 0 <= a.scale < 1, "in [0, 1)"),
        ("augment.translate", a.translate, 0 <= a.translate < 1, "in [0, 1)"),
        ("augment.elastic", a.elastic, 0 <= a.elastic <= 0.5, "in [0, 0.5] (a fraction of the height)"),
        ("augment.stroke", a.stroke, 0 <= a.stroke <= 1, "in [0, 1] (a share of a one-pixel dilation)"),
        ("augment.blur_prob", a.blur_prob, 0 <= a.blur_prob <= 1, "a probability in [0, 1]"),
        ("augment.noise_std", a.noise_std, 0 <= a.noise_std <= 10, "in [0, 10]"),
        ("augment.contrast", a.contrast, 0 <= a.contrast < 1, "in [0, 1)"),
        ("augment.invert_prob", a.invert_prob, 0 <= a.invert_prob <= 1, "a probability in [0, 1]"),
        ("train.epochs", t.epochs, 1 <= t.epochs <= L["train.epochs"], f"in [1, {L['train.epochs']:,}]"),
        ("train.time_budget", t.time_budget, t.time_budget is None or t.time_budget > 0, "unset or positive"),
        ("train.batch_size", t.batch_size, 1 <= t.batch_size <= L["train.batch_size"],
         f"in [1, {L['train.batch_size']}]"),
        ("train.optimizer", t.optimizer, t.optimizer in ("adamw", "adam"), "adamw or adam"),
        ("train.lr", t.lr, t.lr > 0, "positive"),
        ("train.weight_decay", t.weight_decay, t.weight_decay >= 0, "0 or more"),
        ("train.freeze", t.freeze, 0 <= t.freeze <= L["model.channels.count"],
         f"in [0, {L['model.channels.count']}] (CNN stages kept as the --init model has them)"),
        ("train.schedule", t.schedule, t.schedule in ("onecycle", "cosine", "step", "constant"),
         "onecycle, cosine, step or constant"),
        ("train.warmup", t.warmup, 0 <= t.warmup < 1, "in [0, 1)"),
        ("train.output_bias", t.output_bias, t.output_bias in ("zero", "prior"), "zero or prior"),
        ("train.step_epochs", t.step_epochs, t.step_epochs >= 1, "at least 1"),
        ("train.gamma", t.gamma, 0 < t.gamma <= 1, "in (0, 1]"),
        ("train.grad_clip", t.grad_clip, t.grad_clip >= 0, "0 (off) or more"),
        ("train.ema", t.ema, 0 <= t.ema < 1, "in [0, 1) (0 = off)"),
        ("train.seed", t.seed, 0 <= t.seed <= L["train.seed"], f"in [0, {L['train.seed']}]"),
        ("train.log_every", t.log_every, t.log_every >= 1, "at least 1"),
        ("train.amp", t.amp, t.amp in (True, False, "auto"), "auto, true or false"),
        ("train.threads", t.threads, 0 <= t.threads <= 256, "0 (measure) or a thread count up to 256"),
        ("train.max_bad_steps", t.max_bad_steps, t.max_bad_steps >= 1, "at least 1"),
        ("train.checkpoint_every", t.checkpoint_every, t.checkpoint_every >= 0,
         "0 (at epoch ends only) or more seconds"),
    ]
    for name, value, ok, want in rules:
        if not ok:
            raise ConfigError(f"{name} must be {want}, got {value!r}")
    return cfg


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'top'}' must be a table, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}' (known: {', '.join(sorted(names))})")
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, tp, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check ``value`` against the annotation ``tp``, converting strings from ``--set``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, name)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{name}: bad value {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(v, item, name) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if name.endswith("time_budget") and isinstance(value, str):
            return parse_duration(value)
        try:
            if tp is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return int(float(value)) if isinstance(value, str) else int(value)
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {tp.__name__}, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    return value


def parse_duration(text: str | float | int) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h``, ``1h30m`` -> seconds.

    >>> parse_duration("10m"), parse_duration("1h30m"), parse_duration(45)
    (600.0, 5400.0, 45.0)
    """
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip().lower()
    total, num = 0.0, ""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        for ch in s:
            if ch.isdigit() or ch == ".":
                num += ch
            elif ch in units and num:
                total += float(num) * units[ch]
                num = ""
            else:
                raise ValueError
        if num:
            total += float(num)
    except ValueError:
        raise ConfigError(f"bad duration {text!r}: use e.g. 90s, 10m, 1.5h") from None
    if total <= 0:
        raise ConfigError(f"bad duration {text!r}: must be positive")
    return total


def read_table(path: str | Path) -> dict[str, Any]:
    """The plain table of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file: the one reader of
    config files (training configs and synth configs), with one-line errors naming the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: line {line} is not valid UTF-8 (config files must be UTF-8)") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        return tomllib.loads(text)
    except Exception as e:  # tomllib.TOMLDecodeError / yaml.YAMLError
        kind = "YAML" if p.suffix.lower() in (".yaml", ".yml") else "TOML"
        raise ConfigError(f"{p}: not valid {kind}: {e}") from None


def load_config(path: str | Path | None) -> Config:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    data = read_table(path)
    try:
        return Config.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    """Apply ``section.key=value`` strings (values are parsed by the key's type)."""
    d = cfg.to_dict()
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or parts[0] not in d:
            raise ConfigError(f"--set {item!r}: key must be one of {', '.join(d)} followed by .name")
        if parts[1] not in d[parts[0]]:
            raise ConfigError(f"unknown config key '{key.strip()}' (known: {', '.join(sorted(d[parts[0]]))})")
        d[parts[0]][parts[1]] = value
    return Config.from_dict(d)


def build_config(path: str | Path | None = None, overrides: list[str] | None = None,
                 settings: dict[str, Any] | None = None) -> tuple[Config, set[str]]:
    """The config of a run and the keys the user gave: the file at ``path``, then ``--set`` ``overrides``,
    then ``settings`` (``{"train.epochs": 5}``: what ``crnn train``'s own flags say, already typed by the
    parser, so they are set as given: a label pattern ``none`` stays a pattern; ``train.time_budget`` may be a
    duration such as ``10m``).

    >>> cfg, given = build_config(None, ["train.lr=1e-3"], {"train.time_budget": "10m", "model.arch": "paper"})
    >>> cfg.train.lr, cfg.train.time_budget, cfg.model.arch, sorted(given)
    (0.001, 600.0, 'paper', ['model.arch', 'train.lr', 'train.time_budget'])
    """
    cfg = apply_overrides(load_config(path), overrides)
    for key, value in (settings or {}).items():
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, parse_duration(value) if name == "time_budget" else value)
    return cfg, explicit_keys(path, overrides) | set(settings or {})


def explicit_keys(path: str | Path | None, overrides: list[str] | None) -> set[str]:
    """The ``section.key`` names a config file or ``--set`` gives a value to (not left at the default).

    Fine-tuning needs this: the init model's preprocessing wins unless the user asked for another.
    """
    keys = {item.split("=", 1)[0].strip() for item in overrides or [] if "=" in item}
    if path is not None:
        data = read_table(path)
        keys |= {f"{sec}.{k}" for sec, table in data.items() if isinstance(table, dict) for k in table}
    return keys


def to_toml(cfg: Config) -> str:
    """Serialise a config as TOML (``None`` values are left out: they mean 'default/auto')."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is None:
                lines.append(f"# {k} = (unset)")
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)
