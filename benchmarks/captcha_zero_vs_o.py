"""How well can '0' be told from 'O' in the ``captcha`` package's images, one glyph at a time?

The seed-parity fine-tune (``benchmarks/seed_parity.py --init builtin:en``) loses most of its words to
0<->O swaps. This asks whether the glyphs themselves still carry the difference after the package's
per-character rotation (up to 30 degrees) and quadrilateral warp: it draws single characters exactly as
``ImageCaptcha`` does (``_draw_character``, its DroidSansMono font), scales each to 24x32 (about the size a
glyph has in a 160x60 CAPTCHA), trains a small CNN on ``--train-count`` of them (half 0, half O) and reports
its accuracy on 2,000 fresh ones. Without the rest of the CAPTCHA (neighbours, dots, the arc) this is an
upper bound on what a recognizer can do for the pair.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/captcha_zero_vs_o.py [--train-count 6000]
"""

from __future__ import annotations

import argparse

import numpy as np


def glyphs(cap, chars: str, size=(24, 32)) -> np.ndarray:
    from PIL import Image, ImageDraw

    out = []
    for c in chars:
        canvas = Image.new("RGB", (100, 100), (255, 255, 255))
        g = cap._draw_character(c, ImageDraw.Draw(canvas), (0, 0, 0, 255))
        alpha = Image.new("L", g.size, 0)
        alpha.paste(g.getchannel("A"))
        out.append(np.asarray(alpha.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255)
    return np.stack(out)[:, None]


def main() -> int:
    import torch
    from captcha.image import ImageCaptcha
    from torch import nn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-count", type=int, default=6000)
    ap.add_argument("--steps", type=int, default=1400, help="optimizer steps of 128 glyphs")
    args = ap.parse_args()
    torch.manual_seed(0)
    cap = ImageCaptcha(width=160, height=60)
    n = args.train_count // 2 * 2
    x_tr = torch.tensor(glyphs(cap, "0O" * (n // 2)))
    y_tr = torch.tensor([0, 1] * (n // 2))
    x_te = torch.tensor(glyphs(cap, "0O" * 1000))
    y_te = torch.tensor([0, 1] * 1000)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 2),
    )
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    best = 0.0
    for step in range(1, args.steps + 1):
        batch = torch.randint(0, n, (128,))
        opt.zero_grad()
        nn.functional.cross_entropy(net(x_tr[batch]), y_tr[batch]).backward()
        opt.step()
        if step % 200 == 0:
            with torch.no_grad():
                acc = (net(x_te).argmax(1) == y_te).float().mean().item()
            best = max(best, acc)
            print(f"step {step}: held-out 0-vs-O accuracy {acc:.1%}", flush=True)
    print(f"{n} training glyphs: best held-out 0-vs-O accuracy {best:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
