"""The training loop: CTC on a CRNN, with validation, checkpoints, resume and a time budget.

One call, :func:`train`, does a whole run into a run folder::

    runs/exp1/
      config.toml   the exact configuration
      train.log     the original project's log lines (time, epoch, LR, loss every N iterations)
      metrics.csv   one row per epoch: loss, validation accuracy and CER, LR, images/s
      last.pt       written every epoch (and every few minutes), with optimizer/RNG state: --resume
      best.pt       the best validation CER so far

What makes CTC training behave: log-softmax outputs, each sample's true input
length (from its real width, not the padded one), ``zero_infinity`` so an
impossible alignment gives no NaN, gradient clipping, and a warm-up.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from crnn.charset import Charset
from crnn.config import Config, to_toml
from crnn.config import validate as validate_config
from crnn.data.augment import augment_batch
from crnn.data.dataset import Batch, TextLineDataset, WidthBucketSampler, collate
from crnn.data.images import Preprocess
from crnn.data.sample_losses import FILE_NAME as SAMPLE_LOSSES
from crnn.data.sample_losses import write_sample_losses
from crnn.data.sources import open_source
from crnn.data.synth_source import Mixed, SynthDataset, is_synth, load_synth
from crnn.errors import ConfigError, CrnnError, DataError
from crnn.fileio import check_output_folder
from crnn.inference import resolve_device, run_model
from crnn.metrics import TextMetrics
from crnn.models import PRESETS, build_model, count_parameters
from crnn.training import distributed as dist_utils
from crnn.training.checkpoint import load_checkpoint, save_checkpoint
from crnn.training.data_setup import apply_dataset_settings, load_dataset, split_validation
from crnn.training.ema import EMA
from crnn.training.progress import STARTED_CER, batch_cer, fastest_threads, schedule_progress
from crnn.training.runfolder import RESUME_MAY_CHANGE, RunFolder, check_resume, describe_source, fingerprint
from crnn.training.runlog import RunLog
from crnn.training.schedule import learning_rate


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware supports it (CPU, recent GPUs), else fp16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@dataclass
class TrainResult:
    run_dir: Path
    best_path: Path
    last_path: Path
    best_accuracy: float
    best_cer: float
    epochs: int
    steps: int
    elapsed: float
    images_per_s: float
    interrupted: bool = False
    history: list[dict] = field(default_factory=list)
    learned_step: int | None = None
    """The step at which the model left CTC's blank plateau (``crnn.training.progress``); None: it never did."""

    @property
    def plateau_note(self) -> str | None:
        """One line for a run that ended on, or barely off, the blank plateau; None when it learned."""
        hint = ("train longer (--time-budget), start from the shipped model (--init builtin:en), or try a "
                "smaller preset (--arch mobile)")
        if self.learned_step is None:
            return (f"the run ended on CTC's blank plateau after {self.steps} steps: its training batches never "
                    f"got below CER 0.7 (validation word accuracy {max(self.best_accuracy, 0):.1%}, CER "
                    f"{self.best_cer:.2f}); {hint}")
        if self.best_accuracy <= 0:
            return (f"the model left CTC's blank plateau at step {self.learned_step} of {self.steps} but reads "
                    f"no whole word yet (validation CER {self.best_cer:.2f}); {hint}")
        return None

    @property
    def learned_nothing(self) -> bool:
        """Never off the plateau: ``crnn train`` then exits with status 3 (the files are still written)."""
        return self.learned_step is None


class _StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save ``last.pt`` and leave cleanly."""

    def __init__(self):
        self.signal: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _transfer_weights(model: torch.nn.Module, init: dict, charset: Charset, init_charset: Charset, log,
                      height_note: str = "") -> None:
    """Load ``init`` weights into ``model``; rows of the output layer follow the characters both charsets share."""
    own = model.state_dict()
    loaded, skipped = 0, []
    for k, v in init.items():
        if k in own and own[k].shape == v.shape and not k.startswith("fc."):
            own[k] = v
            loaded += 1
        elif not k.startswith("fc."):
            skipped.append(k)
    if skipped:
        raise CrnnError(f"--init model has a different architecture (first mismatch: {skipped[0]}){height_note}")
    shared = [c for c in charset.chars if c in init_charset]
    for k in ("fc.weight", "fc.bias"):
        src = init[k]
        dst = own[k].clone()
        dst[0] = src[0]  # blank
        for c in shared:
            dst[charset.index(c)] = src[init_charset.index(c)]
        own[k] = dst
    model.load_state_dict(own)
    if charset != init_charset:
        new = [c for c in charset.chars if c not in init_charset]
        log(f"fine-tuning: output layer rebuilt for the new charset: the rows of the {len(shared)} characters "
            f"it shares with the init model are copied{f', {len(new)} new rows start fresh' if new else ''}; "
            "all other layers kept")


def _fine_tune_charset(labels: Charset, init: Charset, mode: str, say) -> Charset:
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


def _rehearsal(cfg: Config, sources, synth_cfgs, real, charset: Charset, pre: Preprocess, seed: int,
               say) -> list[SynthDataset]:
    """Synthetic lines over the whole charset when a fine-tune's labels lack some of its characters.

    Without them the output rows of characters that never occur in the labels are pushed down at every
    step, and the model stops reading them (see ``data.rehearsal`` for the measurement). Random strings,
    not words: the point is the glyphs, and a regex needs no word list. Recomputed from the data at every
    start, so ``--resume`` rebuilds the same stream.
    """
    if cfg.data.rehearsal <= 0 or real is None:
        return []
    seen = {c for src in sources for r in src.records for c in r.label}
    seen |= {c for sc in synth_cfgs for c in (sc.charset or "")}
    absent = "".join(c for c in charset.chars if c not in seen)
    if not absent.strip():
        return []
    from crnn.synth import SynthConfig

    glyphs = "".join(c for c in charset.chars if not c.isspace())
    cls = "".join("\\" + c if c in "\\]^-[" else c for c in glyphs)
    scfg = SynthConfig(height=pre.height, channels=pre.channels, text=f"regex:[{cls}]{{1,10}}", charset=glyphs)
    n = max(1, round(cfg.data.rehearsal * len(real)))
    say(f"fine-tuning rehearses the init model's characters the training labels lack ({absent!r}): {n} synthetic "
        f"lines over the whole charset per epoch (data.rehearsal={cfg.data.rehearsal}; 0 turns it off)")
    return [SynthDataset(scfg, seed + 5000, n, pre, charset)]


def _choose_threads(cfg: Config, model: torch.nn.Module, train_ds, sampler, pre: Preprocess,
                    device: torch.device, ctx, say) -> None:
    """Set torch's CPU threads: ``train.threads``, or the faster of the current count and one, measured on a
    real batch (forward and backward in eval mode, gradients dropped: the run's state is untouched)."""
    if device.type != "cpu":
        return
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
        say(f"torch threads: {cfg.train.threads} (train.threads)")
        return
    now = torch.get_num_threads()
    if now <= 1 or ctx.distributed:
        say(f"torch threads: {now}")
        return
    batch = collate([train_ds[i] for i in sampler.batches()[0]], pre.channels)

    def step() -> None:
        lp = model(batch.images)
        lens = model.output_lengths(batch.widths).clamp(max=lp.shape[1])
        F.ctc_loss(lp.float().transpose(0, 1), batch.targets, lens, batch.target_lengths, blank=0,
                   reduction="mean", zero_infinity=True).backward()

    was_training = model.training
    model.eval()
    try:
        best, timings = fastest_threads(step, [now, 1])
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    said = ", ".join(f"{timings[n]:.3f} s with {n}" for n in sorted(timings))
    say(f"torch threads: {best} (a training step took {said} on this machine as it is now; train.threads sets it)")


def _rng_state(aug_gen: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "augment": aug_gen.get_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
    }


def _set_rng_state(state: dict, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    aug_gen.set_state(state["augment"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))


# What a fine-tune may set differently from its --init model; every other model key is its architecture.
FINE_TUNE_MAY_CHANGE = frozenset({"data.height", "model.dropout"})


def _arch_value(model_cfg, name: str):
    """A model setting as the network sees it: a preset's own channel list written out equals ``None``."""
    value = getattr(model_cfg, name)
    if name == "channels" and value is None and model_cfg.arch in PRESETS:
        return [b.out for b in PRESETS[model_cfg.arch]]
    if name == "rnn_type":
        return str(value).upper()
    return value


def train(cfg: Config, train_path: str | os.PathLike | list, out_dir: str | os.PathLike,
          val_path: str | os.PathLike | None = None, resume: bool = False, init: str | None = None,
          progress: bool = True, log=print, keep_height: bool = False, explicit: Iterable[str] = (),
          force: bool = False) -> TrainResult:
    """Train a model on ``train_path`` into ``out_dir``.

    ``train_path``: a folder, labels file, LMDB or ``synth:CONFIG.toml``, or a list of them (mixed).

    ``resume`` continues from ``out_dir/last.pt`` (model, optimizer, schedule, epoch, RNG);
    ``init`` starts from another model's weights (fine-tuning; the output layer is
    rebuilt if the charset differs). Fine-tuning keeps the init model's architecture and
    preprocessing. ``explicit`` names the ``section.key`` settings the user gave (a config file,
    ``--set``): of those, ``data.height`` and ``model.dropout`` override the init model's (the
    weights fit any height that the conv stack maps to the same feature size, e.g. 32 to 63 for
    ``small``; another height is an error naming the first layer that does not fit), and any other
    ``model.*`` key that differs from the init model is an error rather than silently ignored.
    ``keep_height=True`` is the same as ``"data.height"`` in ``explicit``.

    The run folder is held by this process alone (:class:`~crnn.training.runfolder.RunFolder`); one
    that already holds a run is written into only with ``resume`` (same data, same settings but the
    budget) or ``force`` (the old files are moved into ``old-TIMESTAMP/`` first).
    Raises :class:`~crnn.errors.CrnnError` for bad input.
    """
    validate_config(cfg)
    explicit = set(explicit) | ({"data.height"} if keep_height else set())
    run = Path(out_dir)
    check_output_folder(run, "run")
    ctx = dist_utils.context()
    with RunFolder(run, resume=resume, force=force, enabled=ctx.rank == 0) as folder:
        return _train(cfg, train_path, run, val_path, resume, init, progress, log, explicit, ctx, folder)


def _train(cfg: Config, train_path, run: Path, val_path, resume: bool, init: str | None, progress: bool, log,
           explicit: set[str], ctx, folder: RunFolder) -> TrainResult:
    last_path, best_path = run / "last.pt", run / "best.pt"
    state = None
    asked = cfg.to_dict()
    if resume:
        if not last_path.exists():
            raise CrnnError(f"{last_path}: nothing to resume (no last.pt in {run})")
        state = load_checkpoint(last_path)
        if "train_state" not in state:
            raise CrnnError(f"{last_path}: has no training state to resume from")
        cfg = Config.from_dict({**state["config"], "train": {**state["config"]["train"],
                                                             **_changed_budget(cfg, state)}})
        for key in sorted((explicit & RESUME_MAY_CHANGE) - {"train.epochs", "train.time_budget"}):
            section, name = key.split(".")  # bookkeeping given anew (checkpoint_every, device ...) applies
            setattr(getattr(cfg, section), name, asked[section][name])

    is_main = ctx.rank == 0
    say = log if is_main else (lambda *_: None)
    device = resolve_device(cfg.train.device) if not ctx.distributed else ctx.device(cfg.train.device)
    seed = cfg.train.seed
    random.seed(seed)
    torch.manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed * 1000 + ctx.rank + 1)

    # Fine-tuning takes its architecture and preprocessing from the init model.
    init_ckpt = None
    if init is not None and state is None:
        from crnn.builtin import resolve_model_path

        init_ckpt = load_checkpoint(resolve_model_path(init))
        init_cfg = Config.from_dict(init_ckpt["config"])
        asked = cfg.model
        for key in sorted(k for k in explicit if k.startswith("model.") and k not in FINE_TUNE_MAY_CHANGE):
            mine, theirs = getattr(asked, key[6:]), getattr(init_cfg.model, key[6:])
            if _arch_value(asked, key[6:]) != _arch_value(init_cfg.model, key[6:]):
                raise ConfigError(f"{key}={mine!r} differs from the --init model's {theirs!r}: fine-tuning keeps "
                                  "the init model's architecture (drop the setting, or train without --init)")
        cfg.model = init_cfg.model
        if "model.dropout" in explicit:
            cfg.model.dropout = asked.dropout
        pre_i = Preprocess.from_dict(init_ckpt["preprocess"])
        if "data.height" in explicit and cfg.data.height != pre_i.height:
            say(f"fine-tuning at height {cfg.data.height} (the init model was trained at {pre_i.height})")
        else:
            cfg.data.height = pre_i.height
        cfg.data.channels = pre_i.channels
        cfg.data.min_width = pre_i.min_width

    locations = [train_path] if isinstance(train_path, (str, os.PathLike)) else list(train_path)
    sources = [open_source(loc, cfg.data.label_pattern) for loc in locations if not is_synth(loc)]
    if state is None:
        apply_dataset_settings(cfg, sources, explicit, fine_tuning=init_ckpt is not None, say=say)
    pre = Preprocess(cfg.data.height, cfg.data.channels, cfg.data.min_width, cfg.data.max_pixels)
    synth_cfgs = [load_synth(loc, pre, cfg.data.charset) for loc in locations if is_synth(loc)]
    vsrc = open_source(val_path, cfg.data.label_pattern) if val_path is not None else None
    listed = iter(sources)
    run_fp = fingerprint([describe_source(str(loc), None if is_synth(loc) else next(listed)) for loc in locations],
                         describe_source(str(val_path), vsrc) if vsrc is not None else None)
    if state is not None:
        check_resume(state.get("run"), run_fp, state["config"], asked, explicit, run)
    if state is not None:
        charset = Charset(state["charset"])
    elif cfg.data.charset:
        charset = Charset(cfg.data.charset)
    else:
        labels = [r.label for src in sources for r in src.records]
        for sc in synth_cfgs:
            if not sc.charset:
                raise CrnnError("synthetic training data needs a charset: set data.charset or 'charset' in the "
                                "synth config")
            labels.append(sc.charset)
        charset = Charset.from_labels(labels)
        if init_ckpt is not None:
            charset = _fine_tune_charset(charset, Charset(init_ckpt["charset"]), cfg.data.init_charset, say)
        else:
            say(f"charset built from the training labels: {len(charset)} characters {charset.chars!r}")
    cfg.data.charset = charset.chars
    if state is None and init_ckpt is None:
        cfg.data.rehearsal = 0.0  # only a fine-tune has something to keep
    synth_cfgs = [dataclasses.replace(sc, charset=charset.chars) for sc in synth_cfgs]

    try:
        model = build_model(cfg.model, charset.num_classes, pre.channels, pre.height)
    except ValueError as e:  # e.g. a data.height too small for the preset's pooling stages
        raise ConfigError(f"model {cfg.model.arch!r} at data.height={pre.height}: {e}") from None
    real: TextLineDataset | None = None
    for src in sources:
        loaded = load_dataset(src, pre, charset, model.output_length, cfg.data.max_width)
        say(loaded.report.format(max_lines=10))
        real = loaded.dataset if real is None else real.extend(loaded.dataset)
    synth = [SynthDataset(sc, seed + 1000 * k, cfg.data.synth_epoch_size, pre, charset)
             for k, sc in enumerate(synth_cfgs)]
    val_ds: TextLineDataset | None = None
    if vsrc is not None:
        vloaded = load_dataset(vsrc, pre, charset, model.output_length, cfg.data.max_width)
        if vloaded.report.skipped:
            say(vloaded.report.format(max_lines=5))
        val_ds = vloaded.dataset
    elif real is not None:
        real, val_ds = split_validation(real, cfg.data.val_fraction, cfg.data.max_val, seed)
        if val_ds is None:
            say(f"only {len(real)} samples: no validation split, validating on the training data")
            val_ds = real
        else:
            say(f"no --val given: holding out {len(val_ds)} of {len(real) + len(val_ds)} training samples "
                f"(data.val_fraction={cfg.data.val_fraction}) for validation")
    else:
        n_val = min(cfg.data.max_val, 1000)
        val_ds = synth[0].render_fixed(n_val, seed=seed + 10**6)
        say(f"no --val given: validating on {n_val} synthetic samples from a separate seed")
    if synth:
        say(f"synthetic data: {cfg.data.synth_epoch_size} new samples per epoch from each synth source")
    rehearse = _rehearsal(cfg, sources, synth_cfgs, real, charset, pre, seed, say)
    parts = ([real] if real is not None else []) + synth + rehearse
    train_ds = parts[0] if len(parts) == 1 else Mixed(parts)

    if init_ckpt is not None:
        note = (f"; its weights do not fit data.height={pre.height}, leave data.height unset to use its "
                f"{pre_i.height}" if pre.height != pre_i.height else "")
        _transfer_weights(model, init_ckpt["model"], charset, Charset(init_ckpt["charset"]), say, note)
    say(f"model: {cfg.model.arch} ({cfg.model.rnn_type} {cfg.model.rnn_layers}x{cfg.model.rnn_hidden}), "
        f"{count_parameters(model):,} parameters, {charset.num_classes} classes; device {device}")

    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    ema = EMA(model, cfg.train.ema) if cfg.train.ema > 0 else None
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.train.lr,
                        weight_decay=cfg.train.weight_decay if cfg.train.optimizer == "adamw" else 0.0)
    ddp_model = ctx.wrap(model)

    # train.batch_size is the global batch: each of N processes takes 1/N of it, so a DDP run takes the
    # same optimisation steps as a single-process one (and reaches the same quality with the same config).
    rank_batch = max(1, cfg.train.batch_size // ctx.world)
    sampler = WidthBucketSampler(train_ds.widths, rank_batch * ctx.world, seed=seed,
                                 drop_last=len(train_ds) >= cfg.train.batch_size * 4, rank=ctx.rank,
                                 world=ctx.world)
    loader = torch.utils.data.DataLoader(
        train_ds, batch_sampler=sampler, num_workers=cfg.data.workers,
        collate_fn=lambda s: collate(s, pre.channels), pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.workers > 0 and not synth,  # workers must see each epoch's set_epoch
        # Its own generator: creating an iterator would otherwise draw from the global RNG and make a
        # resumed run's dropout masks differ from an uninterrupted run's.
        generator=torch.Generator().manual_seed(seed))
    steps_per_epoch = len(sampler)
    total_steps = max(1, steps_per_epoch * cfg.train.epochs)

    # Each real training sample's per-character CTC loss, summed over the steps that saw it, for crnn audit
    # (RUN/sample_losses.tsv): wrong labels are learned last, so their mean stays high. In a Mixed dataset the
    # real samples come first, so a batch index below n_real is a real sample.
    n_real = len(real) if real is not None else 0
    loss_sums = torch.zeros(n_real, dtype=torch.float64)
    loss_counts = torch.zeros(n_real, dtype=torch.int64)
    ts = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "elapsed": 0.0, "best_acc": -1.0, "best_cer": math.inf,
          "images": 0, "bad_total": 0, "learned_step": None, "learned_elapsed": None}
    if state is not None:
        t_state = state["train_state"]
        t_state.setdefault("learned_step", 0)  # runs from before the plateau clock: annealing as they were
        t_state.setdefault("learned_elapsed", 0.0)
        model.load_state_dict(t_state["raw_model"])
        optimizer.load_state_dict(t_state["optimizer"])
        if ema is not None and t_state.get("ema") is not None:
            ema.load_state_dict(t_state["ema"])
        _set_rng_state(t_state["rng"], aug_gen)
        hist = t_state.get("sample_losses")
        if hist is not None and len(hist["sum"]) == n_real:
            loss_sums, loss_counts = hist["sum"].clone(), hist["count"].clone()
        ts.update({k: t_state[k] for k in ts if k in t_state})
        say(f"resuming {run} at epoch {ts['epoch'] + 1}, step {ts['step']}, {ts['elapsed']:.0f} s trained")

    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        moved = folder.start_writing()
        if moved is not None:
            say(f"--force: the earlier run's files were moved to {moved}")
    runlog = RunLog(run, enabled=is_main)
    if is_main:
        (run / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
        runlog.line(f"{'resume' if state else 'start'}: {len(train_ds)} training and {len(val_ds)} validation "
                    f"samples, charset {charset.chars!r}, model {cfg.model.arch}, {count_parameters(model):,} params")

    def payload(kind: str) -> dict:
        weights = (ema.module if ema is not None else model).state_dict()
        p = {"config": cfg.to_dict(), "charset": charset.chars, "preprocess": pre.to_dict(), "run": run_fp,
             "model": {k: v.detach().cpu().contiguous() for k, v in weights.items()},
             "meta": {"epoch": ts["epoch"], "step": ts["step"], "elapsed": ts["elapsed"],
                      "val_accuracy": ts["best_acc"], "val_cer": ts["best_cer"], "kind": kind,
                      "torch": str(torch.__version__), "saved": time.strftime("%Y-%m-%d %H:%M:%S")}}
        if kind == "last":
            p["train_state"] = {
                **{k: ts[k] for k in ts},
                "raw_model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "rng": _rng_state(aug_gen),
                "sample_losses": {"sum": loss_sums.clone(), "count": loss_counts.clone()},
            }
        return p

    def validate() -> TextMetrics:
        eval_model = ema.module if ema is not None else model
        results, _ = run_model(eval_model, val_ds.arrays, pre.channels, device, batch_size=128)
        m = TextMetrics()
        m.update(val_ds.labels, [charset.decode(r.indices) for r in results])
        return m  # every rank validates the whole set, so no reduction is needed

    tb = None
    if is_main and cfg.train.tensorboard:
        from crnn.insight.tensorboard import TensorBoardLogger

        tb = TensorBoardLogger(run)
    last_curves = 0.0
    budget = cfg.train.time_budget
    autocast = cfg.train.amp
    history: list[dict] = []
    interrupted = False
    last_ckpt_time = time.monotonic()
    bad_steps = 0
    t_run0 = time.monotonic() - ts["elapsed"]
    images_at_start, elapsed_at_start = ts["images"], ts["elapsed"]

    def progress_frac() -> float:
        if budget:
            return schedule_progress(ts["elapsed"], budget, cfg.train.warmup, ts["learned_elapsed"])
        return schedule_progress(ts["step"], total_steps, cfg.train.warmup, ts["learned_step"])

    def out_of_time() -> bool:
        done = bool(budget) and ts["elapsed"] >= budget
        return dist_utils.any_true(done, ctx)

    bar = tqdm(total=int(budget) if budget else total_steps, disable=not (progress and is_main), unit="s" if budget
               else "it", dynamic_ncols=True, leave=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    bar.update(int(ts["elapsed"]) if budget else ts["step"])
    _choose_threads(cfg, model, train_ds, sampler, pre, device, ctx, say)
    synced = (loss_sums.clone(), loss_counts.clone())  # the totals every rank agrees on (DDP)

    def sync_sample_losses() -> None:
        """Under DDP, add every rank's steps since the last sync (each rank saw its share of each batch).
        A mid-epoch checkpoint holds the main rank's unsynced share only: a resumed DDP run loses the other
        ranks' part of that one epoch; a single-process run loses nothing."""
        nonlocal loss_sums, loss_counts, synced
        if ctx.distributed and n_real:
            import torch.distributed as tdist

            comm = dist_utils._comm_device()
            d_sum, d_count = (loss_sums - synced[0]).to(comm), (loss_counts - synced[1]).to(comm)
            tdist.all_reduce(d_sum)
            tdist.all_reduce(d_count)
            loss_sums, loss_counts = synced[0] + d_sum.cpu(), synced[1] + d_count.cpu()
        synced = (loss_sums.clone(), loss_counts.clone())

    def write_history() -> None:
        if is_main and n_real:
            names = real.names if real.names is not None else [str(k) for k in range(n_real)]
            write_sample_losses(run / SAMPLE_LOSSES, names, real.labels, loss_sums.tolist(), loss_counts.tolist())

    finished = False
    with _StopFlag() as stop:
        while ts["epoch"] < cfg.train.epochs and not finished:
            epoch = ts["epoch"]
            sampler.set_epoch(epoch)
            if hasattr(train_ds, "set_epoch"):
                train_ds.set_epoch(epoch)
            lr = learning_rate(cfg.train, progress_frac(), epoch)
            runlog.line(f"start epoch {epoch + 1}/{cfg.train.epochs}: learning_rate = {lr:.6g}")
            loss_sum, loss_n, bad_epoch = 0.0, 0, 0
            t_epoch, imgs_epoch = time.monotonic(), 0
            skip = ts["batch_in_epoch"]
            # The loader takes its batches from the same sampler, deterministic per epoch: batch i's indices.
            epoch_batches = sampler.batches() if n_real else None
            for i, batch in enumerate(loader):
                if i < skip:  # resuming mid-epoch: these batches were already trained on
                    continue
                batch: Batch
                lr = learning_rate(cfg.train, progress_frac(), epoch)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                x = batch.images.to(device, non_blocking=True)
                x = augment_batch(x, cfg.augment, aug_gen).contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=amp_dtype(device), enabled=autocast):
                    log_probs = ddp_model(x)
                in_lens = model.output_lengths(batch.widths).clamp(max=log_probs.shape[1])
                per_sample = F.ctc_loss(log_probs.float().transpose(0, 1), batch.targets.to(device),
                                        in_lens.to(device), batch.target_lengths.to(device), blank=0,
                                        reduction="none", zero_infinity=True)
                # exactly what reduction="mean" computes: each loss over its target length, then the batch mean
                per_char = per_sample / batch.target_lengths.to(device).clamp(min=1).to(per_sample.dtype)
                loss = per_char.mean()
                if ts["learned_step"] is None and dist_utils.any_true(
                        batch_cer(log_probs, in_lens, batch.targets, batch.target_lengths) <= STARTED_CER, ctx):
                    ts["learned_step"], ts["learned_elapsed"] = ts["step"], ts["elapsed"]
                    runlog.line(f"learning started at step {ts['step']} ({ts['elapsed']:.0f} s): batch CER <= "
                                f"{STARTED_CER}; the schedule anneals from here")
                optimizer.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):
                    bad_steps += 1
                    bad_epoch += 1
                    ts["bad_total"] += 1
                    if bad_steps >= cfg.train.max_bad_steps:
                        raise CrnnError(f"training diverged: {bad_steps} consecutive non-finite losses "
                                        f"(try a lower train.lr, now {cfg.train.lr})")
                    continue
                bad_steps = 0
                if n_real:
                    idx = torch.as_tensor(epoch_batches[i], dtype=torch.long)
                    assert len(idx) == len(batch), "the loader's batches differ from the sampler's"
                    real_rows = idx < n_real
                    if bool(real_rows.any()):
                        vals = per_char.detach().to("cpu", torch.float64)
                        loss_sums.index_add_(0, idx[real_rows], vals[real_rows])
                        loss_counts.index_add_(0, idx[real_rows], torch.ones_like(idx[real_rows]))
                loss.backward()
                if cfg.train.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                value = float(loss.detach())
                loss_sum += value
                loss_n += 1
                n_img = len(batch) * ctx.world
                imgs_epoch += n_img
                ts["images"] += n_img
                ts["step"] += 1
                ts["batch_in_epoch"] = i + 1
                prev = ts["elapsed"]
                ts["elapsed"] = time.monotonic() - t_run0
                if ts["step"] % cfg.train.log_every == 0 or i == 0:
                    runlog.line(f"iter {i + 1} loss = {value:.6f}")
                rate = imgs_epoch / max(time.monotonic() - t_epoch, 1e-9)
                bar.set_postfix_str(f"ep {epoch + 1} loss {value:.3f} lr {lr:.2e} {rate:.0f} img/s", refresh=False)
                bar.update(int(ts["elapsed"]) - int(prev) if budget else 1)
                if out_of_time():
                    finished = True
                    break
                if dist_utils.any_true(stop.signal is not None, ctx):
                    interrupted = True
                    break
                if is_main and cfg.train.checkpoint_every and \
                        time.monotonic() - last_ckpt_time > cfg.train.checkpoint_every:
                    save_checkpoint(last_path, payload("last"))
                    last_ckpt_time = time.monotonic()
            if interrupted:
                if is_main:
                    save_checkpoint(last_path, payload("last"))
                    write_history()
                    runlog.line(f"interrupted by signal {stop.signal}: saved {last_path} (resume with --resume)")
                break
            epoch_done = not finished or ts["batch_in_epoch"] >= steps_per_epoch
            sync_sample_losses()
            metrics = validate()
            avg = loss_sum / loss_n if loss_n else math.nan  # NaN: no finite step this epoch
            rate = imgs_epoch / max(time.monotonic() - t_epoch, 1e-9)
            if epoch_done:
                ts["epoch"] += 1
                ts["batch_in_epoch"] = 0
            # best.pt follows the validation CER (ties: word accuracy, then the later epoch). On a small
            # validation split CER is far less noisy than word accuracy (one sample = 1 % of 100 words).
            improved = loss_n > 0 and (metrics.cer < ts["best_cer"] or (
                metrics.cer == ts["best_cer"] and metrics.accuracy >= ts["best_acc"]))
            if improved:
                ts["best_acc"], ts["best_cer"] = metrics.accuracy, metrics.cer
            row = {"epoch": epoch + 1, "step": ts["step"], "elapsed_s": ts["elapsed"], "lr": lr, "train_loss": avg,
                   "val_accuracy": metrics.accuracy, "val_accuracy_nocase": metrics.accuracy_nocase,
                   "val_cer": metrics.cer, "images_per_s": rate}
            history.append(row)
            runlog.line(f"epoch {epoch + 1}/{cfg.train.epochs} average_loss = {avg:.6f} val_accuracy = "
                        f"{metrics.accuracy:.4f} val_cer = {metrics.cer:.4f} images/s = {rate:.1f}"
                        + (f" skipped_nonfinite_steps = {bad_epoch}" if bad_epoch else ""))
            runlog.metrics(row)
            if is_main:
                if improved:
                    save_checkpoint(best_path, payload("best"))
                save_checkpoint(last_path, payload("last"))
                write_history()
                last_ckpt_time = time.monotonic()
                if time.monotonic() - last_curves > 10 or ts["epoch"] >= cfg.train.epochs or finished:
                    _write_curves(run)
                    last_curves = time.monotonic()
                if tb is not None:
                    tb.log_epoch(row)
                line = (f"epoch {epoch + 1}: loss {avg:.4f}  val acc {metrics.accuracy:.2%}  "
                        f"CER {metrics.cer:.4f}  best {ts['best_acc']:.2%}  {rate:.0f} img/s")
                if progress:
                    bar.write(line)
                else:
                    say(line)
    bar.close()
    if tb is not None:
        tb.close()
    if is_main and history and time.monotonic() - last_curves > 0:
        _write_curves(run)
    elapsed = ts["elapsed"]
    ips = (ts["images"] - images_at_start) / max(elapsed - elapsed_at_start, 1e-9)
    if is_main:
        runlog.line(f"{'stopped' if interrupted else 'done'}: best val_accuracy {ts['best_acc']:.4f} "
                    f"val_cer {ts['best_cer']:.4f} after {ts['epoch']} epochs, {ts['step']} steps, {elapsed:.0f} s")
    dist_utils.barrier(ctx)
    return TrainResult(run, best_path, last_path, ts["best_acc"], ts["best_cer"], ts["epoch"], ts["step"], elapsed,
                       ips, interrupted, history, ts["learned_step"])


def _changed_budget(cfg: Config, state: dict) -> dict:
    """On resume, keep the saved config but let the user extend ``epochs`` / ``time_budget``."""
    saved = state["config"]["train"]
    out = {}
    for k in ("epochs", "time_budget"):
        v = getattr(cfg.train, k)
        if v != saved.get(k) and v != getattr(type(cfg.train)(), k):
            out[k] = v
    return out


def _write_curves(run: Path) -> None:
    """Draw ``curves.png`` from ``metrics.csv`` when matplotlib is installed (the insight extra)."""
    try:
        from crnn.insight.curves import plot_curves
    except ImportError:
        return
    try:
        plot_curves(run / "metrics.csv", run / "curves.png")
    except Exception as e:  # a plotting problem must never stop training
        (run / "curves.error.txt").write_text(f"{type(e).__name__}: {e}\n")


__all__ = ["train", "TrainResult", "resolve_device", "DataError"]
