"""A run's inputs: its sources, charset, preprocessing and the training and validation sets.

Two steps around building the model: :func:`open_inputs` reads what the data says about the run
(prepared settings, the charset, the fingerprint a resume is checked against) without decoding an
image; :func:`load_sets` then decodes the images (each label checked against the model's time steps)
and adds the synthetic streams, the validation split and, fine-tuning, the rehearsal lines.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crnn.charset import Charset
from crnn.config import Config
from crnn.data.dataset import TextLineDataset
from crnn.data.images import Preprocess
from crnn.data.sources import Source, open_source
from crnn.errors import CrnnError
from crnn.synth.dataset import Mixed, SynthDataset, is_synth, load_synth, synth_config_file
from crnn.training.data_setup import (
    apply_dataset_settings,
    decode_share,
    load_dataset,
    no_usable_sample,
    split_validation,
)
from crnn.training.distributed import DistContext
from crnn.training.finetune import InitModel, fine_tune_charset, native_height
from crnn.training.runfolder import describe_source, fingerprint
from crnn.training.shared_decode import decode_together, machine_size

Say = Callable[[str], None]


@dataclass
class Inputs:
    """What the data says about a run, before any image is decoded."""

    locations: list[Any]
    sources: list[Source]
    val_source: Source | None
    synth_configs: list[Any]
    preprocess: Preprocess
    charset: Charset
    fingerprint: dict[str, Any]
    rehearsal_synth: Any = None
    """The synth config of ``data.rehearsal_synth``, read before any image is decoded (``None``: the defaults)."""


@dataclass
class Sets:
    """The decoded data of a run."""

    train: Any
    """What the loader draws from: the real set, a synthetic stream, or a :class:`Mixed` of them."""
    val: TextLineDataset
    real: TextLineDataset | None
    """The real training samples (first in ``train``): their per-sample losses feed ``crnn audit``."""
    synthetic: bool


def open_inputs(cfg: Config, train_path: str | os.PathLike | list, val_path: str | os.PathLike | None,
                explicit: set[str], init: InitModel | None, saved_charset: str | None, say: Say) -> Inputs:
    """Open the sources and fix the charset (``cfg.data.charset`` is set to it, as the checkpoint records)."""
    locations = [train_path] if isinstance(train_path, (str, os.PathLike)) else list(train_path)
    sources = [open_source(loc, cfg.data.label_pattern) for loc in locations if not is_synth(loc)]
    if saved_charset is None:
        apply_dataset_settings(cfg, sources, explicit, fine_tuning=init is not None, say=say)
        if init is not None:
            native_height(cfg, init, sources, explicit, say)
    pre = Preprocess(cfg.data.height, cfg.data.channels, cfg.data.min_width, cfg.data.max_pixels)
    synth_cfgs = [load_synth(loc, pre, cfg.data.charset) for loc in locations if is_synth(loc)]
    vsrc = open_source(val_path, cfg.data.label_pattern) if val_path is not None else None
    listed = iter(sources)
    run_fp = fingerprint([describe_source(str(loc), None if is_synth(loc) else next(listed)) for loc in locations],
                         describe_source(str(val_path), vsrc) if vsrc is not None else None)
    if saved_charset is not None:
        charset = Charset(saved_charset)
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
        if init is not None:
            charset = fine_tune_charset(charset, init.charset, cfg.data.init_charset, say)
        else:
            say(f"charset built from the training labels: {len(charset)} characters {charset.chars!r}")
    cfg.data.charset = charset.chars
    if saved_charset is None and init is None:
        cfg.data.rehearsal = 0.0  # only a fine-tune has something to keep
    synth_cfgs = [dataclasses.replace(sc, charset=charset.chars) for sc in synth_cfgs]
    rehearsal_synth = None
    if cfg.data.rehearsal > 0 and cfg.data.rehearsal_synth:  # a wrong path fails now, not after the decoding
        try:
            rehearsal_synth = synth_config_file(cfg.data.rehearsal_synth, pre, None)
        except CrnnError as e:
            raise CrnnError(f"data.rehearsal_synth: {e}") from None
    return Inputs(locations, sources, vsrc, synth_cfgs, pre, charset, run_fp, rehearsal_synth)


BIG_SOURCE = 20_000
"""A training source this large is announced before it is decoded: 236,236 synthetic words and lines took
5 minutes to decode at nice 10 before a resumed run said anything (20,000 words: 8.2 s on a free core)."""


def load_sets(cfg: Config, inputs: Inputs, output_length: Callable[[int], int], say: Say,
              ctx: DistContext | None = None) -> Sets:
    """Decode the training and validation images and assemble what the loader draws from.

    Several processes on one machine (``ctx``) share one decoded copy of the training images
    (:mod:`crnn.training.shared_decode`); a single process keeps them in its memory."""
    pre, charset, seed = inputs.preprocess, inputs.charset, cfg.train.seed
    ctx = ctx if ctx is not None else DistContext()

    if ctx.distributed and inputs.sources:
        n_images = sum(len(src.records) for src in inputs.sources)
        if n_images >= BIG_SOURCE:  # minutes of silence at the start would look like a hang
            say(f"decoding the {n_images:,} training images with the {machine_size(ctx)} processes of this machine "
                f"first, into files in {tempfile.gettempdir()} that they all map (word images: about 40 s per "
                "100,000 on a free core, shared between them)")
        decoded, reports = decode_together(
            ctx, inputs.sources, lambda src, share, of, store: decode_share(
                src, pre, charset, output_length, cfg.data.max_width, share, of, store), charset)
        for src, ds, report in zip(inputs.sources, decoded, reports):
            say(report.format(max_lines=10))
            if not len(ds):
                raise no_usable_sample(src, report)
    else:
        decoded = []
        for src in inputs.sources:
            if len(src.records) >= BIG_SOURCE:
                say(f"{src.location}: decoding {len(src.records):,} images into memory first (word images: about "
                    "40 s per 100,000 on a free core)")
            loaded = load_dataset(src, pre, charset, output_length, cfg.data.max_width)
            say(loaded.report.format(max_lines=10))
            decoded.append(loaded.dataset)
    real: TextLineDataset | None = None
    for part in decoded:
        real = part if real is None else real.extend(part)
    synth = [SynthDataset(sc, seed + 1000 * k, cfg.data.synth_epoch_size, pre, charset)
             for k, sc in enumerate(inputs.synth_configs)]
    val_ds: TextLineDataset | None = None
    if inputs.val_source is not None:
        vloaded = load_dataset(inputs.val_source, pre, charset, output_length, cfg.data.max_width)
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
    rehearse = rehearsal(cfg, inputs, real, say)
    parts = ([real] if real is not None else []) + synth + rehearse
    return Sets(parts[0] if len(parts) == 1 else Mixed(parts), val_ds, real, bool(synth))


def rehearsal(cfg: Config, inputs: Inputs, real: TextLineDataset | None, say: Say) -> list[SynthDataset]:
    """Synthetic lines over the whole charset when a fine-tune's labels lack some of its characters.

    Without them the output rows of characters that never occur in the labels are pushed down at every
    step, and the model stops reading them (see ``data.rehearsal`` for the measurement). Random strings,
    not words: the point is the glyphs, and a regex needs no word list. Drawn with the fonts and look of
    ``data.rehearsal_synth`` when it is set (so a benchmark's held-out fonts stay out), else the synth
    defaults. Recomputed from the data at every start, so ``--resume`` rebuilds the same stream.
    """
    if cfg.data.rehearsal <= 0 or real is None:
        return []
    charset, pre = inputs.charset, inputs.preprocess
    seen = {c for src in inputs.sources for r in src.records for c in r.label}
    seen |= {c for sc in inputs.synth_configs for c in (sc.charset or "")}
    absent = "".join(c for c in charset.chars if c not in seen)
    if not absent.strip():
        return []
    glyphs = "".join(c for c in charset.chars if not c.isspace())
    cls = "".join("\\" + c if c in "\\]^-[" else c for c in glyphs)
    base = inputs.rehearsal_synth if inputs.rehearsal_synth is not None else synth_config_file("", pre, None)
    scfg = dataclasses.replace(base, text=f"regex:[{cls}]{{1,10}}", charset=glyphs)
    n = max(1, round(cfg.data.rehearsal * len(real)))
    drawn = (f"drawn as {cfg.data.rehearsal_synth} draws" if inputs.rehearsal_synth is not None
             else "in every installed font; data.rehearsal_synth=CONFIG.toml draws them with a synth config's fonts")
    say(f"fine-tuning rehearses the init model's characters the training labels lack ({absent!r}): {n} synthetic "
        f"lines over the whole charset per epoch, {drawn} (data.rehearsal={cfg.data.rehearsal}; 0 turns it off)")
    return [SynthDataset(scfg, cfg.train.seed + 5000, n, pre, charset)]
