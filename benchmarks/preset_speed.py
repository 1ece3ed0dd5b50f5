"""Inference speed per network and input height, model only: which network is the fast one on this CPU?

The forward pass alone (eval mode, ``torch.inference_mode``, fp32, random images), batch 32 of word-shaped
images ``h`` px high and ``3.5 h`` wide, one thread unless ``--threads``. No decoding, loading or ONNX
Runtime: those cost the same per image whatever the network, so this isolates what the network's arithmetic
costs here. It is how the sixteenth session found that the depthwise-separable ``mobile`` preset buys almost
no speed over ``small`` on this CPU (recipes/builtin_en.md, ``builtin:en-mobile`` stage 7); for a shipped
model's end-to-end speed beside Tesseract use ``benchmarks/infer_throughput.py``.

    .venv/bin/python benchmarks/preset_speed.py [--threads 1] [--seconds 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from crnn.config import ModelConfig
from crnn.models import build_model, count_parameters

# (arch, channels, rnn_hidden, rnn_layers, height): the shipped models and the candidates beside them
VARIANTS: list[tuple[str, list[int] | None, int | None, int | None, int]] = [
    ("mobile", None, 96, 1, 32), ("mobile", None, 96, 1, 48),
    ("small", None, None, None, 32), ("small", None, None, None, 48),
    ("small", [32, 64, 128, 128, 256], None, None, 32), ("small", [32, 64, 128, 128, 256], None, None, 48)]


def images_per_s(model: torch.nn.Module, height: int, seconds: float, batch: int = 32) -> float:
    x = torch.randn(batch, 1, height, int(height * 3.5))
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"forward pass, batch 32 of h x 3.5h, {args.threads} thread(s), torch {torch.__version__}")
    for arch, channels, hidden, layers, h in VARIANTS:
        cfg = ModelConfig(arch=arch, channels=channels, rnn_hidden=hidden, rnn_layers=layers)
        model = build_model(cfg, 85, height=h).eval()
        ips = images_per_s(model, h, args.seconds)
        name = arch + (f" {channels}" if channels else "") + (f", GRU {hidden} x {layers}" if hidden else "")
        print(f"{name:40s} {h} px  {count_parameters(model) / 1e6:.2f} M  {ips:6.0f} images/s")


if __name__ == "__main__":
    main()
