"""Training-step speed in fp32 and in bf16 mixed precision, per network: is a wider network affordable here?

Model only (random images, CTC loss, AdamW), channels-last, batch 64 of 1x48x256 (a word at the shipped
models' height), 97 classes, ``torch.autocast("cpu", torch.bfloat16)`` around the forward as training does.
On a CPU with AMX (``torch.cpu._is_amx_tile_supported()``) oneDNN runs bf16 convolutions and matmuls several
times faster than fp32; elsewhere bf16 is slower, which is why ``train.amp = "auto"`` turns it on only there.

    .venv/bin/python benchmarks/amp_speed.py [--threads 2] [--seconds 8]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from crnn.config import ModelConfig
from crnn.models import build_model, count_parameters

VARIANTS: list[tuple[str, list[int] | None]] = [
    ("small", None), ("small", [24, 48, 96, 96, 192]), ("small", [32, 64, 128, 128, 256]),
    ("half", None), ("paper", None)]


def images_per_s(arch: str, channels: list[int] | None, amp: bool, seconds: float, b: int = 64, h: int = 48,
                 w: int = 256) -> tuple[float, int]:
    model = build_model(ModelConfig(arch=arch, channels=channels), 97, height=h)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    x = torch.randn(b, 1, h, w).contiguous(memory_format=torch.channels_last)
    t = model.output_length(w)
    targets = torch.randint(1, 97, (b * 8,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            lp = model(x)
        loss = F.ctc_loss(lp.float().transpose(0, 1), targets, torch.full((b,), t), torch.full((b,), 8),
                          zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += b
    return n / (time.perf_counter() - t0), count_parameters(model)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    print(f"torch {torch.__version__}, {args.threads} threads, AMX: {'yes' if amx else 'no'}")
    print("| network | parameters | fp32 images/s | bf16 images/s | bf16 / fp32 |")
    print("|---|---:|---:|---:|---:|")
    for arch, channels in VARIANTS:
        fp32, params = images_per_s(arch, channels, False, args.seconds)
        bf16, _ = images_per_s(arch, channels, True, args.seconds)
        name = arch + (f" {channels}" if channels else "")
        print(f"| {name} | {params:,} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
