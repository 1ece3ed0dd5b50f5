"""The training loop: CTC on a CRNN, with validation, checkpoints, resume and a time budget.

One call, :func:`train`, does a whole run into a run folder::

    runs/exp1/
      config.toml        the exact configuration
      train.log          the original project's log lines (time, epoch, LR, loss every N iterations)
      metrics.csv        one row per epoch: loss, validation accuracy and CER, LR, images/s
      last.pt            written every epoch (and every few minutes), with optimizer/RNG state: --resume
      best.pt            the best validation CER so far
      sample_losses.tsv  each training sample's mean loss, for crnn audit

What makes CTC training behave: log-softmax outputs, each sample's true input length (from its real
width, not the padded one), ``zero_infinity`` so an impossible alignment gives no NaN, gradient
clipping, a warm-up, and a schedule that waits for the model to leave the blank plateau before it
anneals. Setting a run up is :mod:`crnn.training.setup`; this module is the loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from tqdm import tqdm

from crnn.checkpoint import save_checkpoint
from crnn.config import Config, to_toml
from crnn.config import validate as validate_config
from crnn.data.augment import augment_batch
from crnn.data.dataset import collate
from crnn.devices import amp_dtype
from crnn.errors import CrnnError
from crnn.fileio import check_output_folder
from crnn.inference.pytorch import run_model
from crnn.metrics import TextMetrics
from crnn.models.crnn import count_parameters
from crnn.training import distributed as dist_utils
from crnn.training.progress import STARTED_CER, batch_cer, schedule_progress
from crnn.training.runfolder import RunFolder
from crnn.training.runlog import RunLog
from crnn.training.schedule import learning_rate
from crnn.training.setup import RunSetup, set_up
from crnn.training.state import TrainResult, model_payload, rng_state
from crnn.training.stopflag import StopFlag
from crnn.training.threads import choose_threads


def train(cfg: Config, train_path: str | os.PathLike | list, out_dir: str | os.PathLike,
          val_path: str | os.PathLike | None = None, resume: bool = False, init: str | None = None,
          progress: bool = True, log=print, explicit: Iterable[str] = (), force: bool = False) -> TrainResult:
    """Train a model on ``train_path`` into ``out_dir``.

    ``train_path``: a folder, labels file, LMDB or ``synth:CONFIG.toml``, or a list of them (mixed).

    ``resume`` continues from ``out_dir/last.pt`` (model, optimizer, schedule, epoch, RNG);
    ``init`` starts from another model's weights (fine-tuning, :mod:`crnn.training.finetune`).
    ``explicit`` names the ``section.key`` settings the user gave (a config file, ``--set``): of those,
    ``data.height`` and ``model.dropout`` override the init model's, and any other ``model.*`` key that
    differs from the init model is an error rather than silently ignored.

    The run folder is held by this process alone (:class:`~crnn.training.runfolder.RunFolder`); one
    that already holds a run is written into only with ``resume`` (same data, same settings but the
    budget) or ``force`` (the old files are moved into ``old-TIMESTAMP/`` first).
    Raises :class:`~crnn.errors.CrnnError` for bad input.
    """
    validate_config(cfg)
    run = Path(out_dir)
    check_output_folder(run, "run")
    ctx = dist_utils.context()
    with RunFolder(run, resume=resume, force=force, enabled=ctx.rank == 0) as folder:
        setup = set_up(cfg, train_path, run, val_path, resume, init, log, set(explicit), ctx)
        if ctx.rank == 0:
            run.mkdir(parents=True, exist_ok=True)
            moved = folder.start_writing()
            if moved is not None:
                setup.say(f"the earlier run saved no model; its logs were moved to {moved}" if folder.restarting
                          else f"--force: the earlier run's files were moved to {moved}")
        return _loop(setup, run, progress)


def _loop(s: RunSetup, run: Path, progress: bool) -> TrainResult:
    cfg, ts, ctx, model = s.cfg, s.state, s.ctx, s.model
    is_main, say, device = ctx.rank == 0, s.say, s.device
    last_path, best_path = run / "last.pt", run / "best.pt"
    runlog = RunLog(run, enabled=is_main)
    if is_main:
        (run / "config.toml").write_text(to_toml(cfg), encoding="utf-8")
        runlog.line(f"{'resume' if s.resumed else 'start'}: {len(s.sets.train)} training and {len(s.sets.val)} "
                    f"validation samples, charset {s.charset.chars!r}, model {cfg.model.arch}, "
                    f"{count_parameters(model):,} params, {'bf16' if s.amp else 'fp32'}")
    if is_main and s.resumed and not best_path.exists():
        # killed between last.pt and best.pt of an improving epoch: its weights are the best so far
        save_checkpoint(best_path, _payload(s, "best"))
        runlog.line(f"resume: {best_path} was missing; written from {last_path}, the best epoch so far")
    tb = _tensorboard(run) if is_main and cfg.train.tensorboard else None
    budget = cfg.train.time_budget
    history: list[dict] = []
    interrupted = finished = False
    last_ckpt, last_curves = time.monotonic(), 0.0  # 0: the first epoch draws curves.png
    bad_steps = 0
    t_run0 = time.monotonic() - ts.elapsed
    images_at_start, elapsed_at_start = ts.images, ts.elapsed

    def progress_frac() -> float:
        if budget:
            return schedule_progress(ts.elapsed, budget, cfg.train.warmup, ts.learned_elapsed)
        return schedule_progress(ts.step, s.total_steps, cfg.train.warmup, ts.learned_step)

    def save_last() -> None:
        save_checkpoint(last_path, _payload(s, "last"))

    bar = tqdm(total=int(budget) if budget else s.total_steps, disable=not (progress and is_main),
               unit="s" if budget else "it", dynamic_ncols=True, leave=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    bar.update(int(ts.elapsed) if budget else ts.step)

    def say_and_log(message: str) -> None:  # the thread choice belongs in train.log too: it sets the run's speed
        say(message)
        runlog.line(message)

    choose_threads(cfg.train.threads, model, lambda: collate([s.sets.train[i] for i in s.sampler.batches()[0]],
                                                            s.preprocess.channels), device, ctx, say_and_log,
                   amp=s.amp)
    with StopFlag() as stop:
        while ts.epoch < cfg.train.epochs and not finished:
            epoch = ts.epoch
            s.sampler.set_epoch(epoch)
            if hasattr(s.sets.train, "set_epoch"):
                s.sets.train.set_epoch(epoch)
            lr = learning_rate(cfg.train, progress_frac(), epoch)
            runlog.line(f"start epoch {epoch + 1}/{cfg.train.epochs}: learning_rate = {lr:.6g}")
            loss_sum, loss_n, bad_epoch = 0.0, 0, 0
            t_epoch, imgs_epoch = time.monotonic(), 0
            skip = ts.batch_in_epoch
            # The loader takes its batches from the same sampler, deterministic per epoch: batch i's indices.
            epoch_batches = s.sampler.batches() if s.losses.n else None
            for i, batch in enumerate(s.loader):
                if i < skip:  # resuming mid-epoch: these batches were already trained on
                    continue
                lr = learning_rate(cfg.train, progress_frac(), epoch)
                for g in s.optimizer.param_groups:
                    g["lr"] = lr
                x = batch.images.to(device, non_blocking=True)
                x = augment_batch(x, cfg.augment, s.aug_gen).contiguous(memory_format=s.memory_format)
                target_lengths = batch.target_lengths.to(device)
                with torch.autocast(device.type, dtype=amp_dtype(device), enabled=s.amp):
                    out = s.ddp_model(x, batch.widths.to(device), batch.targets.to(device), target_lengths)
                # exactly what reduction="mean" computes: each loss over its target length, then the batch mean
                per_char = out.loss / target_lengths.clamp(min=1).to(out.loss.dtype)
                loss = per_char.mean()
                if ts.learned_step is None and dist_utils.any_true(
                        batch_cer(out.log_probs, out.lengths, batch.targets, batch.target_lengths) <= STARTED_CER, ctx):
                    ts.learned_step, ts.learned_elapsed = ts.step, ts.elapsed
                    runlog.line(f"learning started at step {ts.step} ({ts.elapsed:.0f} s): batch CER <= "
                                f"{STARTED_CER}; the schedule anneals from here")
                s.optimizer.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):
                    bad_steps, bad_epoch, ts.bad_total = bad_steps + 1, bad_epoch + 1, ts.bad_total + 1
                    if bad_steps >= cfg.train.max_bad_steps:
                        raise CrnnError(f"training diverged: {bad_steps} consecutive non-finite losses "
                                        f"(try a lower train.lr, now {cfg.train.lr})")
                    continue
                bad_steps = 0
                if epoch_batches is not None:
                    s.losses.add(epoch_batches[i], per_char)
                loss.backward()
                if cfg.train.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                s.optimizer.step()
                if s.ema is not None:
                    s.ema.update(model)
                value = float(loss.detach())
                loss_sum, loss_n = loss_sum + value, loss_n + 1
                n_img = len(batch) * ctx.world
                imgs_epoch += n_img
                ts.images += n_img
                ts.step += 1
                ts.batch_in_epoch = i + 1
                prev, ts.elapsed = ts.elapsed, time.monotonic() - t_run0
                if ts.step % cfg.train.log_every == 0 or i == 0:
                    runlog.line(f"iter {i + 1} loss = {value:.6f}")
                rate = imgs_epoch / max(time.monotonic() - t_epoch, 1e-9)
                bar.set_postfix_str(f"ep {epoch + 1} loss {value:.3f} lr {lr:.2e} {rate:.0f} img/s", refresh=False)
                bar.update(int(ts.elapsed) - int(prev) if budget else 1)
                if dist_utils.any_true(budget is not None and ts.elapsed >= budget, ctx):
                    finished = True
                    break
                if dist_utils.any_true(stop.signal is not None, ctx):
                    interrupted = True
                    break
                if is_main and cfg.train.checkpoint_every and time.monotonic() - last_ckpt > cfg.train.checkpoint_every:
                    save_last()
                    last_ckpt = time.monotonic()
            if interrupted:
                if is_main:
                    save_last()
                    s.losses.write(run)
                    runlog.line(f"interrupted by signal {stop.signal}: saved {last_path} (resume with --resume)")
                break
            epoch_done = not finished or ts.batch_in_epoch >= s.steps_per_epoch
            s.losses.sync(ctx)
            metrics = _validate(s)
            avg = loss_sum / loss_n if loss_n else math.nan  # NaN: no finite step this epoch
            rate = imgs_epoch / max(time.monotonic() - t_epoch, 1e-9)
            if epoch_done:
                ts.epoch, ts.batch_in_epoch = ts.epoch + 1, 0
            # best.pt follows the validation CER, far less noisy than word accuracy on a small split (one
            # sample = 1 % of 100 words); an epoch within the CER's noise of the lowest is kept (the later).
            improved = loss_n > 0 and ts.take_best(metrics.cer, metrics.accuracy, metrics.chars)
            if improved:
                ts.best_epoch, ts.best_step = epoch + 1, ts.step
            row = {"epoch": epoch + 1, "step": ts.step, "elapsed_s": ts.elapsed, "lr": lr, "train_loss": avg,
                   "val_accuracy": metrics.accuracy, "val_accuracy_nocase": metrics.accuracy_nocase,
                   "val_cer": metrics.cer, "images_per_s": rate}
            history.append(row)
            runlog.line(f"epoch {epoch + 1}/{cfg.train.epochs} average_loss = {avg:.6f} val_accuracy = "
                        f"{metrics.accuracy:.4f} val_cer = {metrics.cer:.4f} images/s = {rate:.1f}"
                        + (f" skipped_nonfinite_steps = {bad_epoch}" if bad_epoch else ""))
            runlog.metrics(row)
            if is_main:
                save_last()  # before best.pt: a kill between the two leaves a resumable run (see below)
                if improved:
                    save_checkpoint(best_path, _payload(s, "best"))
                s.losses.write(run)
                last_ckpt = time.monotonic()
                if time.monotonic() - last_curves > 10 or ts.epoch >= cfg.train.epochs or finished:
                    _write_curves(run)
                    last_curves = time.monotonic()
                if tb is not None:
                    tb.log_epoch(row)
                line = (f"epoch {epoch + 1}: loss {avg:.4f}  val acc {metrics.accuracy:.2%}  "
                        f"CER {metrics.cer:.4f}  best {ts.best_acc:.2%}  {rate:.0f} img/s")
                if progress:
                    bar.write(line)
                else:
                    say(line)
    bar.close()
    if tb is not None:
        tb.close()
    if is_main and history:
        _write_curves(run)
    ips = (ts.images - images_at_start) / max(ts.elapsed - elapsed_at_start, 1e-9)
    passes = ts.epoch + ts.batch_in_epoch / s.steps_per_epoch
    if is_main:
        runlog.line(f"{'stopped' if interrupted else 'done'}: best val_accuracy {ts.best_acc:.4f} "
                    f"val_cer {ts.best_cer:.4f} (epoch {ts.best_epoch}, step {ts.best_step}) after {passes:.2f} "
                    f"epochs, {ts.step} steps, {ts.elapsed:.0f} s")
    dist_utils.barrier(ctx)
    return TrainResult(run, best_path, last_path, ts.best_acc, ts.best_cer, ts.epoch, ts.step, ts.elapsed, ips,
                       interrupted, history, ts.learned_step, ts.best_epoch, ts.best_step, passes)


def _validate(s: RunSetup) -> TextMetrics:
    """Greedy word accuracy and CER on the validation set (every rank validates it all: nothing to reduce)."""
    results, _ = run_model(s.eval_model, s.sets.val.arrays, s.preprocess.channels, s.device, batch_size=128)
    m = TextMetrics()
    m.update(s.sets.val.labels, [s.charset.decode(r.indices) for r in results])
    return m


def _payload(s: RunSetup, kind: str) -> dict:
    """``best.pt`` / ``last.pt``: the model (EMA weights when on) and, for ``last``, all a resume needs."""
    p = model_payload(s.cfg.to_dict(), s.charset.chars, s.preprocess.to_dict(), s.run_fp,
                      s.eval_model.state_dict(), s.state, kind)
    if kind == "last":
        p["train_state"] = {
            **s.state.to_dict(),
            "raw_model": {k: v.detach().cpu() for k, v in s.model.state_dict().items()},
            "optimizer": s.optimizer.state_dict(),
            "ema": s.ema.state_dict() if s.ema is not None else None,
            "rng": rng_state(s.aug_gen),
            "sample_losses": s.losses.state_dict(),
        }
    return p


def _tensorboard(run: Path):
    from crnn.training.tensorboard import TensorBoardLogger

    return TensorBoardLogger(run)


def _write_curves(run: Path) -> None:
    """Draw ``curves.png`` from ``metrics.csv`` when matplotlib is installed (the insight extra)."""
    try:
        from crnn.training.curves import plot_curves
    except ImportError:
        return
    try:
        plot_curves(run / "metrics.csv", run / "curves.png")
    except Exception as e:  # a plotting problem must never stop training
        (run / "curves.error.txt").write_text(f"{type(e).__name__}: {e}\n")


__all__ = ["train", "TrainResult"]
