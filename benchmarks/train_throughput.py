"""Training throughput per model variant and batch size, against the machine's arithmetic floor.

For each variant: FLOPs per training image (forward + backward, counted with
``torch.utils.flop_counter`` on a real CTC training step), the machine's measured fp32
matmul rate, and so the "floor" (the images/s the arithmetic alone would allow); then
images/s measured (a) model only (random tensors, CTC + AdamW) and (b) end to end through
the real training loop (``crnn.training.loop.train``: in-memory decoded images, width
bucketing, batch augmentation, EMA, validation and checkpoints included) on CAPTCHA images.

    .venv/bin/python benchmarks/train_throughput.py [--variants small,mobile] [--batch-sizes 32,64]
                                                    [--seconds 20] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from crnn.config import Config, ModelConfig
from crnn.models import build_model, count_parameters


def matmul_rate(seconds: float = 3.0, n: int = 1024) -> float:
    """Measured fp32 GEMM FLOP/s with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def train_step_fn(model, batch: int, height: int, width: int, channels_last: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    x = torch.randn(batch, 1, height, width).contiguous(memory_format=fmt)
    t = model.output_length(width)
    targets = torch.randint(1, 37, (batch * 5,))

    def step():
        lp = model(x)
        loss = F.ctc_loss(lp.transpose(0, 1), targets, torch.full((batch,), t), torch.full((batch,), 5),
                          zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def flops_per_train_image(arch: str, height: int, width: int) -> float:
    model = build_model(ModelConfig(arch=arch), 37, height=height)
    step = train_step_fn(model, 8, height, width, False)
    with FlopCounterMode(display=False) as fc:
        step()
    return fc.get_total_flops() / 8


def model_only(arch: str, batch: int, height: int, width: int, seconds: float) -> float:
    model = build_model(ModelConfig(arch=arch), 37, height=height)
    step = train_step_fn(model, batch, height, width, True)
    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    return n / (time.perf_counter() - t0)


def end_to_end(arch: str, batch: int, height: int, data: Path, seconds: float) -> float:
    from crnn.training.loop import train

    cfg = Config()
    cfg.data.height = height
    cfg.model = ModelConfig(arch=arch)
    cfg.train.batch_size = batch
    cfg.train.time_budget = seconds
    with tempfile.TemporaryDirectory() as tmp:
        res = train(cfg, data, Path(tmp) / "run", progress=False, log=lambda *a: None)
    return res.images_per_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="mobile,small,half,paper")
    ap.add_argument("--batch-sizes", default="32,64")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--data", default="bench-out/seed_parity/train", help="CAPTCHA folder (made if missing)")
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--height", type=int, default=Config().data.height, help="model input height")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not args.no_e2e and len(list(data.glob("*.png"))) < 2000:
        from crnn.data.captcha import generate_captchas

        generate_captchas(data, 2000, seed=1)
    height = args.height
    width = round(160 * height / 60)  # 160x60 CAPTCHAs at the model height
    rate = matmul_rate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 matmul {rate / 1e9:.1f} GFLOP/s, "
          f"input 1x{height}x{width}")
    rows = []
    for arch in args.variants.split(","):
        fl = flops_per_train_image(arch, height, width)
        floor = rate / fl
        params = count_parameters(build_model(ModelConfig(arch=arch), 37))
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            mo = model_only(arch, bs, height, width, args.seconds / 2)
            e2e = float("nan") if args.no_e2e else end_to_end(arch, bs, height, data, args.seconds)
            row = {"variant": arch, "params": params, "batch": bs, "input": f"1x{height}x{width}",
                   "train_gflop_per_image": fl / 1e9,
                   "floor_images_per_s": floor, "model_only_images_per_s": mo, "end_to_end_images_per_s": e2e,
                   "model_only_pct_floor": 100 * mo / floor, "end_to_end_pct_floor": 100 * e2e / floor}
            rows.append(row)
            print(f"{arch:>6} b{bs:<4} {fl / 1e9:6.3f} GFLOP/img  floor {floor:7.0f} img/s  model-only {mo:7.0f} "
                  f"({row['model_only_pct_floor']:4.0f}%)  end-to-end {e2e:7.0f} ({row['end_to_end_pct_floor']:4.0f}%)",
                  flush=True)
    print(json.dumps({"matmul_gflops": rate / 1e9, "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
