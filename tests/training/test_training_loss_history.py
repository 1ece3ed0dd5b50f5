"""crnn.training.loss_history: the per-sample CTC loss training records, and its resume."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_toy_set
from crnn.charset import Charset
from crnn.checkpoint import load_checkpoint
from crnn.config import Config, apply_overrides
from crnn.data.dataset import collate
from crnn.data.images import Preprocess
from crnn.data.sample_losses import read_sample_losses
from crnn.data.sources import open_source
from crnn.models import build_model
from crnn.training.data_setup import load_dataset
from crnn.training.loop import train

FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.seed=0",
        "data.val_fraction=0"]


def _quiet(cfg: Config, data, run, **kw):
    return train(cfg, data, run, progress=False, log=lambda *a: None, **kw)


def test_mean_is_the_per_character_ctc_loss_training_took(tmp_path):
    """One batch holds all 24 samples and the LR is negligible, so every epoch's loss of a sample is the same
    number, and it can be recomputed with F.ctc_loss from the saved weights (train mode: batch statistics)."""
    data = tmp_path / "data"
    make_toy_set(data, 24, seed=3)
    cfg = apply_overrides(Config(), FAST + ["train.batch_size=32", "train.lr=1e-12", "train.epochs=3",
                                            "augment.enabled=false", "model.dropout=0", "train.warmup=0"])
    res = _quiet(cfg, data, tmp_path / "run")
    hist = read_sample_losses(res.run_dir / "sample_losses.tsv")
    assert len(hist) == 24 and all(h.seen == 3 for h in hist.values())

    ckpt = load_checkpoint(res.last_path)
    saved = Config.from_dict(ckpt["config"])
    charset, pre = Charset(ckpt["charset"]), Preprocess.from_dict(ckpt["preprocess"])
    model = build_model(saved.model, charset.num_classes, pre.channels, pre.height)
    model.load_state_dict(ckpt["train_state"]["raw_model"])
    model.train()
    ds = load_dataset(open_source(data), pre, charset, model.output_length).dataset
    batch = collate([ds[i] for i in range(len(ds))], pre.channels)
    with torch.no_grad():
        lp = model(batch.images)
        lens = model.output_lengths(batch.widths).clamp(max=lp.shape[1])
        per = F.ctc_loss(lp.float().transpose(0, 1), batch.targets, lens, batch.target_lengths, blank=0,
                         reduction="none", zero_infinity=True) / batch.target_lengths
    got = np.array([hist[n].mean for n in ds.names])
    assert got == pytest.approx(per.numpy(), rel=1e-3, abs=1e-5)
    assert [hist[n].label for n in ds.names] == ds.labels


def test_resume_continues_the_history(tmp_path):
    """Interrupted (SIGINT) one step into epoch 3, then resumed: the same history as an uninterrupted run."""
    data = tmp_path / "data"
    make_toy_set(data, 40, seed=4)
    cfg = FAST + ["train.epochs=4"]
    whole = _quiet(apply_overrides(Config(), cfg), data, tmp_path / "whole")

    def stop_after_epoch_2(line: str) -> None:
        if str(line).startswith("epoch 2:"):
            os.kill(os.getpid(), signal.SIGINT)

    part = train(apply_overrides(Config(), cfg), data, tmp_path / "part", progress=False, log=stop_after_epoch_2)
    assert part.interrupted
    first = read_sample_losses(tmp_path / "part" / "sample_losses.tsv")
    assert {h.seen for h in first.values()} == {2, 3}  # one batch of epoch 3 was trained on
    _quiet(apply_overrides(Config(), cfg), data, tmp_path / "part", resume=True)
    resumed = (tmp_path / "part" / "sample_losses.tsv").read_text(encoding="utf-8")
    assert all(h.seen == 4 for h in read_sample_losses(tmp_path / "part" / "sample_losses.tsv").values())
    assert resumed == (whole.run_dir / "sample_losses.tsv").read_text(encoding="utf-8")
