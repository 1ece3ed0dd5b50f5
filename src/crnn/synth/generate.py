"""Samples, datasets and streams of synthetic text lines.

Sample ``i`` of seed ``s`` is drawn from its own generator, ``default_rng([s, i])``, so
a dataset is the same whatever the number of workers, a stream can start anywhere,
and :class:`SynthStream` yields exactly the samples :func:`synthesize` writes.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from crnn.errors import ConfigError, DataError
from crnn.fileio import check_output_parent, replace_folder
from crnn.synth.config import SynthConfig
from crnn.synth.fonts import covers, draws_all, font_family, list_fonts, load_font, split_fonts
from crnn.synth.render import render
from crnn.synth.sampler import TextSampler
from crnn.synth.text import clean_text, renderable

MAX_TEXT_TRIES = 200
"""Texts drawn before giving up on finding one that fits the charset and some font."""
FONT_TRIES = 8
"""Random fonts tried for a text before scanning all of them for one that covers it."""
CHUNK = 64
"""Samples a worker process renders per task."""


@dataclass(frozen=True)
class Sample:
    image: Image.Image
    text: str
    font: str
    """Path of the font the text was rendered with."""


@functools.lru_cache(maxsize=4096)
def font_usable(path: str) -> bool:
    """Pillow can load it as a scalable font (colour-bitmap emoji fonts, for one, cannot)."""
    try:
        font = load_font(path, 24)
        font.getbbox("A")
        return True
    except Exception:  # any font Pillow cannot use is simply unusable
        return False


class _Context:
    """What a config needs, built once per process: the fonts and the text sampler."""

    def __init__(self, cfg: SynthConfig):
        fonts = list_fonts(cfg.fonts, system=cfg.system_fonts, bundled=cfg.bundled_fonts, exclude=cfg.exclude_fonts)
        train, holdout = split_fonts(fonts, cfg.holdout_fonts, cfg.holdout_fraction, cfg.holdout_seed)
        chosen = {"train": train, "holdout": holdout, "all": fonts}[cfg.font_split]
        if not chosen:
            raise ConfigError(
                f"synth config: no {cfg.font_split} fonts ({len(fonts)} found, {len(holdout)} held out); "
                "check fonts, exclude_fonts, holdout_fonts and font_split"
            )
        self.fonts: tuple[str, ...] = tuple(str(f) for f in chosen)
        self.balance = cfg.font_balance
        families: dict[str, list[str]] = {}
        for f in chosen:
            families.setdefault(font_family(f), []).append(str(f))
        self.families: tuple[tuple[str, ...], ...] = tuple(tuple(v) for v in families.values())
        self.text = TextSampler(cfg)
        self.charset = frozenset(cfg.charset) if cfg.charset else None

    def pick_font(self, text: str, rng: np.random.Generator) -> str | None:
        """A font uniformly among those that cover ``text``, or None. Depends only on the
        rng and the (pure, cached) font checks, never on what was cached before."""
        n = len(self.fonts)
        for _ in range(FONT_TRIES):
            if self.balance == "family":
                family = self.families[int(rng.integers(len(self.families)))]
                f = family[int(rng.integers(len(family)))]
            else:
                f = self.fonts[int(rng.integers(n))]
            if covers(f, text) and font_usable(f) and draws_all(f, text):
                return f
        ok = [f for f in self.fonts if covers(f, text) and font_usable(f) and draws_all(f, text)]
        return ok[int(rng.integers(len(ok)))] if ok else None


@functools.lru_cache(maxsize=16)
def _context(cfg: SynthConfig) -> _Context:
    return _Context(cfg)


def fonts_for(cfg: SynthConfig) -> list[str]:
    """The font files ``cfg`` renders with (after exclusions and the hold-out split)."""
    return list(_context(cfg).fonts)


def sample_with_info(rng: np.random.Generator, cfg: SynthConfig) -> Sample:
    """Draw a text, a font with a glyph for each of its characters, and render it."""
    ctx = _context(cfg)
    for _ in range(MAX_TEXT_TRIES):
        text = clean_text(ctx.text(rng))
        if not renderable(text) or (cfg.max_chars and len(text) > cfg.max_chars):
            continue
        if ctx.charset is not None and not set(text) <= ctx.charset:
            continue
        font = ctx.pick_font(text, rng)
        if font is None:
            continue
        return Sample(render(text, font, rng, cfg), text, font)
    raise DataError(
        f"synth: no usable text after {MAX_TEXT_TRIES} tries: the text source {cfg.text!r} rarely yields text "
        f"that fits charset={cfg.charset!r} and max_chars={cfg.max_chars} and that one of "
        f"{len(ctx.fonts)} fonts covers"
    )


def sample(rng: np.random.Generator, cfg: SynthConfig) -> tuple[Image.Image, str]:
    """One (image, label) pair; the label is exactly the text drawn."""
    s = sample_with_info(rng, cfg)
    return s.image, s.text


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of ``seed``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([int(seed), int(index)])


def sample_at(cfg: SynthConfig, seed: int, index: int) -> Sample:
    """Sample ``index`` of the dataset/stream of ``seed``: the same on every call."""
    return sample_with_info(sample_rng(seed, index), cfg)


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def _render_range(cfg: SynthConfig, seed: int, start: int, stop: int) -> list[tuple[bytes, str]]:
    out = []
    for i in range(start, stop):
        s = sample_at(cfg, seed, i)
        out.append((encode_png(s.image), s.text))
    return out


def _generate(cfg: SynthConfig, seed: int, count: int, workers: int) -> Iterator[tuple[bytes, str]]:
    """(png bytes, label) of samples 0..count-1, in order."""
    chunk = CHUNK
    if workers <= 1 or count <= chunk:
        for i in range(count):
            s = sample_at(cfg, seed, i)
            yield encode_png(s.image), s.text
        return
    _context(cfg)  # fail here, in the parent, on a bad config
    ranges = [(a, min(a + chunk, count)) for a in range(0, count, chunk)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = []
        it = iter(ranges)
        for a, b in it:
            pending.append(pool.submit(_render_range, cfg, seed, a, b))
            if len(pending) >= 4 * workers:
                break
        while pending:
            fut = pending.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_render_range, cfg, seed, *nxt))
            yield from fut.result()


def _check_label(label: str) -> None:
    if any(c in label for c in "\t\n\r"):  # cannot happen after clean_text; guards labels.tsv
        raise DataError(f"synth: label {label!r} holds a tab or newline")


def synthesize(
    out: str | os.PathLike,
    count: int,
    cfg: SynthConfig,
    seed: int,
    fmt: str = "folder",
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``count`` samples to ``out`` and return ``out``.

    ``fmt="folder"``: ``000001.png``, ``000002.png``, ... (1-based, at least six digits)
    and ``labels.tsv`` with ``FILE<TAB>LABEL`` lines (UTF-8). ``fmt="lmdb"``: an LMDB
    dataset written with :class:`crnn.data.lmdb_store.LmdbWriter`, PNG images, metadata
    with the seed, the config and the charset of the labels.

    Both are written beside ``out`` and moved into place when complete. The result
    depends on ``seed`` and ``cfg`` only, not on ``workers``. ``progress`` is called with
    the number of samples written so far, every 100 samples and at the end.
    """
    if fmt not in ("folder", "lmdb"):
        raise ValueError(f"fmt must be 'folder' or 'lmdb', got {fmt!r}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass --force to replace it)")
    check_output_parent(out, "synthetic dataset")
    chars: set[str] = set()
    meta = {
        "source": "crnn.synth",
        "seed": seed,
        "count": count,
        "height": cfg.height,
        "channels": cfg.channels,
        "synth_config": cfg.to_dict(),
    }

    def tick(n: int) -> None:
        if progress is not None and (n % 100 == 0 or n == count):
            progress(n)

    if fmt == "lmdb":
        from crnn.data.lmdb_store import LmdbWriter

        with LmdbWriter(out, overwrite=overwrite) as w:
            for n, (png, label) in enumerate(_generate(cfg, seed, count, workers), 1):
                _check_label(label)
                w.add(png, label)
                chars.update(label)
                tick(n)
            w.set_meta({**meta, "charset": "".join(sorted(chars))})
        return out

    digits = max(6, len(str(count)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with open(tmp / "labels.tsv", "w", encoding="utf-8", newline="\n") as labels:
            for n, (png, label) in enumerate(_generate(cfg, seed, count, workers), 1):
                _check_label(label)
                name = f"{n:0{digits}d}.png"
                (tmp / name).write_bytes(png)
                labels.write(f"{name}\t{label}\n")
                tick(n)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class SynthStream:
    """An endless iterator of (image, label): sample ``start``, ``start + 1``, ... of ``seed``.

    It never repeats an index, and its samples are those :func:`synthesize` writes for the
    same seed. Inside a torch ``DataLoader`` worker ``k`` of ``n``, it yields indices
    ``start + k``, ``start + k + n``, ...: the workers never overlap, and the loader's
    round-robin order gives the same sequence as one process. torch is imported only to
    ask for the worker, and only if something already imported it.

    To resume after ``k`` samples, pass ``start=k``. For a loader, wrap it with
    :meth:`as_torch_dataset` (a ``torch.utils.data.IterableDataset``).
    """

    def __init__(self, cfg: SynthConfig, seed: int, start: int = 0):
        if seed < 0 or start < 0:
            raise ValueError(f"seed and start must be >= 0, got seed={seed}, start={start}")
        self.cfg = cfg
        self.seed = seed
        self.start = start
        self._next: int | None = None
        self._step = 1
        self._pid: int | None = None

    def _setup(self) -> None:
        wid, nworkers = 0, 1
        if "torch" in sys.modules:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
            if info is not None:
                wid, nworkers = info.id, info.num_workers
        self._next = self.start + wid
        self._step = nworkers
        self._pid = os.getpid()

    def __iter__(self) -> SynthStream:
        return self

    def __next__(self) -> tuple[Image.Image, str]:
        if self._next is None or self._pid != os.getpid():
            self._setup()
        assert self._next is not None
        s = sample_at(self.cfg, self.seed, self._next)
        self._next += self._step
        return s.image, s.text

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        """Random access: sample ``index`` of the seed (``start`` does not apply)."""
        s = sample_at(self.cfg, self.seed, index)
        return s.image, s.text

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_next"], state["_pid"], state["_step"] = None, None, 1  # each process finds its own place
        return state

    def as_torch_dataset(self, transform: Callable | None = None):
        """A ``torch.utils.data.IterableDataset`` over this stream, applying ``transform``
        to each (image, label) pair if given."""
        from crnn.synth.torch_stream import SynthIterableDataset

        return SynthIterableDataset(self, transform)
