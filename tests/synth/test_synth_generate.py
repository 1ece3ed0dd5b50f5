"""crnn.synth.generate: samples, folder and LMDB output and streams are deterministic and consistent."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from crnn.data.lmdb_store import LmdbReader
from crnn.synth import (
    SynthStream,
    sample,
    sample_at,
    synthesize,
)
from crnn.synth import fonts as fonts_mod
from crnn.synth import generate as gen_mod
from crnn.synth.fonts import font_codepoints, load_font


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def clear_caches() -> None:
    gen_mod._context.cache_clear()
    gen_mod.font_usable.cache_clear()
    font_codepoints.cache_clear()
    load_font.cache_clear()
    fonts_mod._has_ink.cache_clear()


def test_same_seed_same_bytes_and_labels_different_seed_differs(cfg):
    run1 = [sample_at(cfg, 7, i) for i in range(12)]
    clear_caches()  # the result must not depend on what was cached before
    run2 = [sample_at(cfg, 7, i) for i in range(12)]
    other = [sample_at(cfg, 8, i) for i in range(12)]
    assert [s.text for s in run1] == [s.text for s in run2]
    assert [png(s.image) for s in run1] == [png(s.image) for s in run2]
    assert [png(s.image) for s in run1] != [png(s.image) for s in other]
    assert len({png(s.image) for s in run1}) == 12  # samples within a seed differ too


def test_sample_uses_only_the_rng_passed(cfg):
    a = sample(np.random.default_rng(3), cfg)
    np.random.seed(0)  # global state must play no part
    b = sample(np.random.default_rng(3), cfg)
    assert a[1] == b[1] and png(a[0]) == png(b[0])


def test_folder_output_consistent(cfg, tmp_path, monkeypatch):
    out = synthesize(tmp_path / "set", 10, cfg, seed=3)
    rows = (out / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 10
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"{i:06d}.png" for i in range(1, 11)]
    for i, row in enumerate(rows):
        name, label = row.split("\t")
        assert name == f"{i + 1:06d}.png"
        expected = sample_at(cfg, 3, i)
        assert label == expected.text
        with Image.open(out / name) as im:
            assert im.height == cfg.height
            assert png(im.convert("L")) == png(expected.image)
    with pytest.raises(FileExistsError):
        synthesize(out, 2, cfg, seed=3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    # the same set with worker processes (chunks kept small so both workers take part)
    monkeypatch.setattr(gen_mod, "CHUNK", 3)
    out2 = synthesize(tmp_path / "set2", 10, cfg, seed=3, workers=2)
    assert (out2 / "labels.tsv").read_bytes() == (out / "labels.tsv").read_bytes()
    assert all((out2 / f).read_bytes() == (out / f).read_bytes() for f in files)


def test_lmdb_output_readable(cfg, tmp_path):
    out = synthesize(tmp_path / "set.lmdb", 6, cfg, seed=5, fmt="lmdb")
    r = LmdbReader(out)
    assert len(r) == 6
    labels = [r.label(i) for i in range(6)]
    assert labels == [sample_at(cfg, 5, i).text for i in range(6)]
    for i in range(6):
        with Image.open(io.BytesIO(r.image_bytes(i))) as im:
            assert im.format == "PNG" and im.height == cfg.height
    assert r.meta["seed"] == 5 and r.meta["height"] == cfg.height
    assert set(r.meta["charset"]) == set("".join(labels))


def test_stream_matches_dataset_and_resumes(cfg):
    stream = SynthStream(cfg, seed=3)
    first = [next(stream) for _ in range(5)]
    assert [t for _, t in first] == [sample_at(cfg, 3, i).text for i in range(5)]
    resumed = SynthStream(cfg, seed=3, start=2)
    assert png(next(resumed)[0]) == png(first[2][0])
    assert stream[4][1] == first[4][1]
