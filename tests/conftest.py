"""Shared fixtures: tiny, deterministic datasets drawn with Pillow's built-in font.

Tests train tiny models on these, so they must be learnable in seconds: a few
characters, short labels, clean rendering. One torch thread keeps timings sane
on a shared 2-core machine (two threads on a busy machine are many times slower).

Every fixture or helper that more than one test module needs is written here once (below the datasets, in
sections). Helpers are imported as ``from conftest import name``; that is also why there are no conftest.py
files in the subfolders: each would take over the module name ``conftest`` for the modules collected after it.
"""

from __future__ import annotations

import importlib.util
import io
import os
import random
import shutil
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from crnn.cli import EXIT_LEARNED_NOTHING, EXIT_OK
from crnn.config import Config, apply_overrides

try:
    import uvicorn
except ImportError:  # the serve extra is not installed; the tests that start a server skip
    uvicorn = None

torch.set_num_threads(1)

TOY_ALPHABET = "AB-7x"


def render_text(text: str, height: int = 32, font_size: int = 22) -> Image.Image:
    font = ImageFont.load_default(size=font_size)
    w = int(font.getlength(text)) + 8
    img = Image.new("L", (max(w, 8), height), 255)
    ImageDraw.Draw(img).text((4, (height - font_size) // 2 - 2), text, fill=0, font=font)
    return img


def make_toy_set(folder: Path, n: int, seed: int = 0, alphabet: str = TOY_ALPHABET, min_len: int = 1,
                 max_len: int = 4, height: int = 32) -> list[str]:
    """``n`` images ``height`` px high with distinct random labels over ``alphabet``, written as
    ``folder/labels.tsv``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    labels: list[str] = []
    seen: set[str] = set()
    while len(labels) < n:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        if text in seen and len(seen) < len(alphabet) ** max_len // 2:
            continue
        seen.add(text)
        labels.append(text)
    lines = []
    for i, text in enumerate(labels):
        render_text(text, height=height, font_size=int(height * 0.7)).save(folder / f"{i:05d}.png")
        lines.append(f"{i:05d}.png\t{text}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return labels


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    make_toy_set(root / "train", 240, seed=1)
    make_toy_set(root / "test", 40, seed=2)
    return root


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the pages' tests.

    Skips, saying why, when either is missing. The flags keep it off the network (this machine has none
    but loopback) and give it a fresh profile.
    """
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--disable-extensions", "--no-default-browser-check",
                 "--window-size=1100,900", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An untrained but valid model file over the toy alphabet: enough for eval and predict to exercise their
    input handling."""
    from crnn.checkpoint import save_checkpoint
    from crnn.config import Config
    from crnn.data.images import Preprocess
    from crnn.models import build_model

    charset = "".join(sorted(TOY_ALPHABET))
    cfg = Config()
    cfg.model.rnn_hidden = 16
    cfg.data.charset = charset
    model = build_model(cfg.model, len(charset) + 1)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "charset": charset, "preprocess": Preprocess().to_dict(),
                           "model": model.state_dict()})
    return path


_TRAINED: dict[str, Path] = {}


def tiny_model_path(toy_data: Path, tmp_path_factory) -> Path:
    """A small model trained 3 epochs on the toy set, once per test session (shared by the serve tests)."""
    if "best" not in _TRAINED:
        from crnn.training.loop import train

        cfg = apply_overrides(Config(), ["data.height=32",
                                         "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3",
                                         "train.epochs=3", "train.seed=0"])
        result = train(cfg, toy_data / "train", tmp_path_factory.mktemp("export_run") / "exp",
                       val_path=toy_data / "test", progress=False, log=lambda *a: None)
        _TRAINED["best"] = Path(result.best_path)
    return _TRAINED["best"]


class ServerThread:
    """uvicorn serving ``app`` in a background thread on a socket bound to 127.0.0.1:<free port>."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


# ---------------------------------------------------------------------------------------------------------------
# The CLI's error output


def one_error_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


def error_line(err: str) -> str:
    """The CLI's one-line error; no traceback."""
    err = err.strip()
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("error: "), err
    return last


def one_line_per_file(text: str, names: list[str]) -> None:
    """Each name appears on a line of its own that also says why."""
    lines = text.splitlines()
    for name in names:
        hits = [ln for ln in lines if name in ln]
        assert hits, f"{name} not mentioned in:\n{text}"
        assert any(": " in ln.split(name, 1)[1] for ln in hits), f"no reason given for {name}: {hits}"


# ---------------------------------------------------------------------------------------------------------------
# Image files, good and bad


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """A valid PNG of 8-bit grey pixels; only ``rows`` rows of pixel data follow the header."""
    raw = (b"\0" + b"\xff" * width) * rows if width * rows <= 100_000_000 else b"\0"
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A folder of three label-named text lines (for ``model_file``: eval and predict's input handling)."""
    root = tmp_path_factory.mktemp("imgs")
    for text in ("AB", "7x", "BA"):
        render_text(text).save(root / f"{text}.png")
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict:
    """A folder of label-named images: some good, one of each kind of bad file."""
    root = tmp_path_factory.mktemp("zoo") / "data"
    root.mkdir()
    for text in ("AB", "BA", "7x", "A-B"):
        render_text(text).save(root / f"{text}.png")
    Image.new("L", (1, 1), 0).save(root / "A.png")                       # 1 x 1 pixel
    wide = Image.new("L", (20_000, 20), 255)
    wide.paste(0, (100, 5, 19_900, 15))
    wide.save(root / "xx.png")                                           # 20,000 x 20 pixels
    good = _png(render_text("B"))
    bad = {
        "truncated": ("B7.png", good[: len(good) // 2]),
        "not an image": ("AA.png", b"just some text, not pixels\n"),
        "empty file": ("BB.png", b""),
        "PDF as JPEG": ("x7.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n"),
        "bomb (header)": ("77.png", png_claiming(100_000, 100_000)),
        "bomb (pixels)": ("7A.png", png_claiming(10_000, 5_000, rows=5_000)),
        "outside charset": ("AZZ.png", _png(render_text("AZZ"))),
        "outside charset 2": ("Zq.png", _png(render_text("Zq"))),
        "empty label": (" .png", _png(render_text(" "))),
        "not an image extension": ("notes.txt", b"hello"),
    }
    for _, (name, data) in bad.items():
        (root / name).write_bytes(data)
    (root / "copy").mkdir()
    (root / "copy" / "AB.png").write_bytes((root / "AB.png").read_bytes())  # exact duplicate
    return {"root": root, "bad": {k: str(root / n) for k, (n, _) in bad.items()},
            "duplicate": str(root / "copy" / "AB.png")}


# ---------------------------------------------------------------------------------------------------------------
# Exported models


HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))

needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs onnx and onnxruntime (pip install onnx onnxruntime)")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_file(model_file, tmp_path_factory) -> Path:
    """``model_file`` (untrained) exported to ONNX with ``crnn export``."""
    from crnn.cli import main

    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "m.onnx"
    assert main(["export", str(model_file), "--format", "onnx", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model_path(toy_data, tmp_path_factory) -> Path:
    return tiny_model_path(toy_data, tmp_path_factory)


@pytest.fixture(scope="module")
def onnx_path(model_path, tmp_path_factory) -> Path:
    from crnn.export.onnx import export_onnx

    result = export_onnx(model_path, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff < TOLERANCE
    return result.path


@pytest.fixture(scope="module")
def width_images(toy_data, tmp_path_factory) -> list[Path]:
    """Text lines of many widths: the toy test set plus some longer and very short renderings.

    The export and ONNX tests take it as their ``images`` (each of those modules aliases it)."""
    folder = tmp_path_factory.mktemp("widths")
    extra = []
    for i, text in enumerate(["A", "x", "AB-7xAB-7x", "7-7-7-7-7-7-BBBB", "xA"]):
        p = folder / f"w{i}.png"
        render_text(text).save(p)
        extra.append(p)
    wide = folder / "wide.png"
    render_text("AB" * 40).save(wide)  # over 512 px at model height: read at full width
    return sorted((toy_data / "test").glob("*.png"))[:20] + extra + [wide]


# ---------------------------------------------------------------------------------------------------------------
# A trained run for the insight and curves tests


FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.log_every=5"]


@pytest.fixture(scope="session")
def run(toy_data, tmp_path_factory):
    """A tiny model trained for 4 epochs (it reads most of the toy set) and its run folder, once per session
    (tests only read it)."""
    from crnn.training.loop import train

    cfg = apply_overrides(Config(), FAST + ["train.epochs=4"])
    return train(cfg, toy_data / "train", tmp_path_factory.mktemp("insight") / "run", val_path=toy_data / "test",
                 progress=False, log=lambda *a: None)


@pytest.fixture(scope="module")
def rec(run):
    from crnn import Recognizer

    return Recognizer.load(run.best_path)


# ---------------------------------------------------------------------------------------------------------------
# Training runs with faults injected (test_checkpoint.py, training/test_training_state.py and _stopflag.py)


EPOCHS = 3

SETTINGS = ["data.height=32",
            "model.rnn_hidden=32", "train.batch_size=16", "train.checkpoint_every=0.5", "train.log_every=1",
            "data.val_fraction=0"]

ARGS = [a for s in SETTINGS for a in ("--set", s)] + ["--epochs", str(EPOCHS), "--no-progress"]

RAN = (EXIT_OK, EXIT_LEARNED_NOTHING)
"""Short toy runs may end on CTC's blank plateau: `crnn train` then says so and exits 3, every file written
(tests/training/test_training_progress.py checks that). The tests using this are about faults and run
folders, not learning."""


# Drawing ``curves.png`` after each epoch costs seconds with matplotlib on a busy machine and is not what these
# tests are about, so it is switched off: here by stubbing ``_write_curves``, in child processes by hiding
# matplotlib (the loop then records the failure in ``curves.error.txt`` and carries on).
# The modules that want it say ``pytestmark = pytest.mark.usefixtures("no_curves")``.
@pytest.fixture(scope="module")
def no_curves():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("crnn.training.loop._write_curves", lambda run: None)
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faults") / "data"
    make_toy_set(d, 40, seed=11)
    return d


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data (tests/synth)


WORDS = "apple banana cherry river mountain quiet window yellow garden simple number letter table\n"


@pytest.fixture(scope="module")
def words_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("words") / "words.txt"
    p.write_text("\n".join(WORDS.split()) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def cfg(words_file):
    """Independent of installed system fonts and of wordfreq."""
    from crnn.synth import SynthConfig

    return SynthConfig(system_fonts=False, text=f"words:{words_file}", punct_prob=0.3, pattern_prob=0.2)
