"""Does torch.compile or the fused AdamW speed up a training step on this CPU? Model only, 2 threads.

Random 32x1x48x128 batches, CTC + AdamW. Eager is timed first and last, to show how much the machine
drifted in between; the warm-up time includes compilation.

    .venv/bin/python benchmarks/compile_check.py [small|mobile|half|paper]
"""

from __future__ import annotations

import sys
import time

import torch

from crnn.config import ModelConfig
from crnn.models import build_model

B, H, W = 32, 48, 128


def images_per_s(arch: str, mode: str) -> tuple[float, float]:
    """(images/s over 15 steps, seconds for the 3 warm-up steps) for eager, fused-AdamW or compiled training."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch), num_classes=37, height=H)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, fused=True if mode == "fused" else None)
    forward = torch.compile(model) if mode == "compile" else model
    x, targets = torch.randn(B, 1, H, W), torch.randint(1, 37, (B, 5))
    ctc = torch.nn.CTCLoss(zero_infinity=True)

    def step() -> None:
        lp = forward(x).log_softmax(-1)
        if lp.shape[0] == B:
            lp = lp.transpose(0, 1)
        loss = ctc(lp, targets, torch.full((B,), lp.shape[0]), torch.full((B,), 5))
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = time.perf_counter()
    for _ in range(3):
        step()
    warm = time.perf_counter() - t
    t, n = time.perf_counter(), 15
    for _ in range(n):
        step()
    return B * n / (time.perf_counter() - t), warm


def main() -> int:
    torch.set_num_threads(2)
    arch = sys.argv[1] if len(sys.argv) > 1 else "small"
    for mode in ("eager", "fused", "compile", "eager"):
        ips, warm = images_per_s(arch, mode)
        print(f"{arch} {mode}: {ips:.0f} images/s (warm-up {warm:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
