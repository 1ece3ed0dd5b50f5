"""Everything a run needs before its first step: the config a resume restores, the seeds, the init model,
the data, the model, EMA, optimiser, DDP wrapper, sampler and loader, and the restored state.

The order of these steps is part of a run's reproducibility (building the model draws its initial
weights from the seeded RNG), so it lives in one function, :func:`set_up`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crnn.charset import BLANK, Charset
from crnn.checkpoint import load_checkpoint
from crnn.config import Config
from crnn.data.dataset import WidthBucketSampler, collate
from crnn.data.images import Preprocess
from crnn.devices import resolve_device, use_amp
from crnn.errors import ConfigError, CrnnError
from crnn.models.crnn import CRNN, build_model, count_parameters
from crnn.training import distributed as dist_utils
from crnn.training.assemble import Sets, load_sets, open_inputs
from crnn.training.ema import EMA
from crnn.training.finetune import apply_init, freeze_stages, transfer_weights
from crnn.training.loss_history import SampleLossHistory
from crnn.training.output_prior import log_prior, set_output_prior
from crnn.training.runfolder import RESUME_MAY_CHANGE, check_resume
from crnn.training.state import TrainState, set_rng_state


@dataclass
class RunSetup:
    cfg: Config
    ctx: dist_utils.DistContext
    say: Callable[[str], None]
    device: torch.device
    charset: Charset
    preprocess: Preprocess
    run_fp: dict[str, Any]
    sets: Sets
    model: CRNN
    ddp_model: torch.nn.Module
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    sampler: WidthBucketSampler
    loader: torch.utils.data.DataLoader
    aug_gen: torch.Generator
    memory_format: torch.memory_format
    state: TrainState
    losses: SampleLossHistory
    resumed: bool
    amp: bool
    """Whether steps run under autocast (``train.amp`` resolved for the device)."""

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    @property
    def total_steps(self) -> int:
        return max(1, self.steps_per_epoch * self.cfg.train.epochs)

    @property
    def eval_model(self) -> CRNN:
        """The weights that are validated and saved: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.model  # type: ignore[return-value]


def _resumed_config(cfg: Config, saved: dict[str, Any], explicit: set[str]) -> Config:
    """The saved config, with a longer budget and the bookkeeping keys the user gave anew."""
    asked = cfg.to_dict()
    train_saved = saved["config"]["train"]
    budget = {k: getattr(cfg.train, k) for k in ("epochs", "time_budget")
              if getattr(cfg.train, k) != train_saved.get(k) and getattr(cfg.train, k) != getattr(type(cfg.train)(), k)}
    out = Config.from_dict({**saved["config"], "train": {**train_saved, **budget}})
    for key in sorted((explicit & RESUME_MAY_CHANGE) - {"train.epochs", "train.time_budget"}):
        section, name = key.split(".")  # bookkeeping given anew (checkpoint_every, device ...) applies
        setattr(getattr(out, section), name, asked[section][name])
    return out


def set_up(cfg: Config, train_path, run: Path, val_path, resume: bool, init: str | None, log,
           explicit: set[str], ctx: dist_utils.DistContext) -> RunSetup:
    saved = None
    asked = cfg.to_dict()
    if resume:
        last = run / "last.pt"
        if not last.exists():
            raise CrnnError(f"{last}: nothing to resume (no last.pt in {run})")
        saved = load_checkpoint(last)
        if "train_state" not in saved:
            raise CrnnError(f"{last}: has no training state to resume from")
        cfg = _resumed_config(cfg, saved, explicit)

    say = log if ctx.rank == 0 else (lambda *_: None)
    device = resolve_device(cfg.train.device) if not ctx.distributed else ctx.device(cfg.train.device)
    seed = cfg.train.seed
    random.seed(seed)
    torch.manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed * 1000 + ctx.rank + 1)

    if cfg.train.freeze and init is None and saved is None:  # refused before any data is read
        raise ConfigError(f"train.freeze={cfg.train.freeze} needs --init: it keeps the init model's first CNN "
                          "stages, and a model trained from scratch has none to keep")
    init_model = apply_init(cfg, init, explicit, say) if init is not None and saved is None else None
    inputs = open_inputs(cfg, train_path, val_path, explicit, init_model,
                         saved["charset"] if saved is not None else None, say)
    if saved is not None:
        check_resume(saved.get("run"), inputs.fingerprint, saved["config"], asked, explicit, run)
    charset, pre = inputs.charset, inputs.preprocess
    try:
        model = build_model(cfg.model, charset.num_classes, pre.channels, pre.height)
    except ValueError as e:  # e.g. a data.height too small for the preset's pooling stages
        raise ConfigError(f"model {cfg.model.arch!r} at data.height={pre.height}: {e}") from None
    if cfg.train.freeze:  # before the data is loaded, and before the optimiser is built (it takes only the rest)
        freeze_stages(model, cfg.train.freeze, say)
    sets = load_sets(cfg, inputs, model.output_length, say, ctx)
    if init_model is not None:
        transfer_weights(model, init_model, charset, pre.height, say, seed)
    elif saved is None and cfg.train.output_bias == "prior":
        if sets.real is None:
            say("train.output_bias=prior: no real training samples to count, the output bias starts at zero")
        else:
            prior = log_prior(sets.real.targets, sets.real.widths, model.output_length, charset.num_classes)
            set_output_prior(model.fc, prior)
            say(f"output bias set to the training labels' class prior (blank {prior[BLANK].exp():.0%} of the "
                "time steps; train.output_bias=prior)")
    m = cfg.model
    amp, precision = use_amp(cfg.train.amp, device)
    say(f"model: {m.arch} ({m.rnn_type} {m.rnn_layers}x{m.rnn_hidden}), {count_parameters(model):,} parameters, "
        f"{charset.num_classes} classes; device {device}, {precision}")

    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)  # type: ignore[call-overload]
    ema = EMA(model, cfg.train.ema) if cfg.train.ema > 0 else None
    t = cfg.train
    opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    trained = [p for p in model.parameters() if p.requires_grad]  # train.freeze leaves the frozen stages out
    optimizer = opt_cls(trained, lr=t.lr, weight_decay=t.weight_decay if t.optimizer == "adamw" else 0.0)
    ddp_model = ctx.wrap(model)

    # train.batch_size is the global batch: each of N processes takes 1/N of it, so a DDP run takes the
    # same optimisation steps as a single-process one (and reaches the same quality with the same config).
    train_ds = sets.train
    rank_batch = max(1, t.batch_size // ctx.world)
    sampler = WidthBucketSampler(train_ds.widths, rank_batch * ctx.world, seed=seed,
                                 drop_last=len(train_ds) >= t.batch_size * 4, rank=ctx.rank, world=ctx.world)
    loader = torch.utils.data.DataLoader(
        train_ds, batch_sampler=sampler, num_workers=cfg.data.workers,
        collate_fn=lambda s: collate(s, pre.channels), pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.workers > 0 and not sets.synthetic,  # workers must see each epoch's set_epoch
        # Its own generator: creating an iterator would otherwise draw from the global RNG and make a
        # resumed run's dropout masks differ from an uninterrupted run's.
        generator=torch.Generator().manual_seed(seed))

    state = TrainState()
    losses = SampleLossHistory(sets.real)
    if saved is not None:
        saved_state = saved["train_state"]
        model.load_state_dict(saved_state["raw_model"])
        optimizer.load_state_dict(saved_state["optimizer"])
        if ema is not None and saved_state.get("ema") is not None:
            ema.load_state_dict(saved_state["ema"])
        set_rng_state(saved_state["rng"], aug_gen)
        losses.load_state_dict(saved_state.get("sample_losses"))
        state = TrainState.from_dict(saved_state)
        say(f"resuming {run} at epoch {state.epoch + 1}, step {state.step}, {state.elapsed:.0f} s trained")
    return RunSetup(cfg, ctx, say, device, charset, pre, inputs.fingerprint, sets, model, ddp_model, ema, optimizer,
                    sampler, loader, aug_gen, memory_format, state, losses, saved is not None, amp)
