"""Shared fixtures: tiny, deterministic datasets drawn with Pillow's built-in font.

Tests train tiny models on these, so they must be learnable in seconds: a few
characters, short labels, clean rendering. One torch thread keeps timings sane
on a shared 2-core machine (two threads on a busy machine are many times slower).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

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
                 max_len: int = 4) -> list[str]:
    """``n`` images with distinct random labels over ``alphabet``, written as ``folder/labels.tsv``."""
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
        render_text(text).save(folder / f"{i:05d}.png")
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
