"""Bounded load test of ``crnn serve``: N concurrent clients, loopback only.

Starts the server in a subprocess on 127.0.0.1 (a free port) with the given model
(or a freshly initialised ``small`` model: untrained weights cost the same to run),
sends a fixed number of ``POST /v1/recognize`` requests from ``--clients``
concurrent clients (each request: one rendered text line, widths varying), stops
at ``--requests`` or after ``--max-seconds``, whichever comes first, and prints
requests/s, latency percentiles, status counts and the server's micro-batching
counters. Exits 1 if any request got a 5xx or failed.

    python benchmarks/serve_load.py [--model best.pt|model.onnx] [--backend auto|torch|onnx]
        [--clients 8] [--requests 400] [--max-seconds 60] [--threads 1] [--max-wait-ms 5]

``--url http://127.0.0.1:PORT`` targets a server already running on this machine
instead (loopback addresses only).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import ipaddress  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))  # run from a checkout without installing

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
SERVE = ("import argparse, sys\n"
         "from crnn.serve.cli import register\n"
         "p = argparse.ArgumentParser(prog='crnn')\n"
         "register(p.add_subparsers(dest='command', required=True))\n"
         "a = p.parse_args(sys.argv[1:])\n"
         "sys.exit(a.func(a))\n")


def render(text: str, height: int = 32) -> bytes:
    font = ImageFont.load_default(size=22)
    img = Image.new("L", (int(font.getlength(text)) + 8, height), 255)
    ImageDraw.Draw(img).text((4, 3), text, fill=0, font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def untrained_checkpoint(folder: Path) -> Path:
    """A default ``small`` CRNN with random weights, saved as a regular checkpoint."""
    import torch

    from crnn.checkpoint import save_checkpoint
    from crnn.config import Config
    from crnn.data.images import Preprocess
    from crnn.models import build_model

    torch.manual_seed(0)
    cfg, pre = Config(), Preprocess()
    model = build_model(cfg.model, len(ALPHABET) + 1, pre.channels, pre.height)
    return save_checkpoint(folder / "untrained.pt", {"config": cfg.to_dict(), "charset": ALPHABET,
                                                     "preprocess": pre.to_dict(), "model": model.state_dict()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"refusing to load-test {url}: only loopback addresses (127.0.0.1, ::1, localhost)")


def start_server(args, model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-c", SERVE, "serve", str(model), "--port", str(port), "--backend", args.backend,
           "--threads", str(args.threads), "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start within 120 s:\n{log.read_text()}")


async def load(url: str, images: list[bytes], clients: int, requests: int, max_seconds: float, per_request: int):
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    issued = 0
    stop_at = time.monotonic() + max_seconds

    async def client(k: int) -> None:
        nonlocal issued
        rng = random.Random(k)
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60.0)) as c:
            while issued < requests and time.monotonic() < stop_at:
                issued += 1
                files = [("files", (f"{j}.png", rng.choice(images), "image/png")) for j in range(per_request)]
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/recognize", files=files)
                    statuses[r.status_code] += 1
                except httpx.HTTPError as e:
                    statuses[type(e).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return time.perf_counter() - t0, latencies, statuses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint or .onnx (default: an untrained small model)")
    ap.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    ap.add_argument("--url", help="load-test a running server on this machine instead (loopback only)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400, help="total requests (a hard cap)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="stop issuing requests after this long")
    ap.add_argument("--images-per-request", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="server model threads")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--warmup", type=int, default=10, help="requests sent before measuring")
    args = ap.parse_args(argv)

    rng = random.Random(0)
    images = [render("".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 14)))) for _ in range(64)]
    proc = None
    with tempfile.TemporaryDirectory(prefix="crnn-serve-load-") as tmp:
        if args.url:
            check_loopback(args.url)
            url = args.url.rstrip("/")
        else:
            model = Path(args.model) if args.model else untrained_checkpoint(Path(tmp))
            if args.backend == "onnx" and model.suffix != ".onnx":
                from crnn.export.onnx import export_onnx

                model = export_onnx(model, Path(tmp) / "model.onnx").path
            proc, url = start_server(args, model, Path(tmp) / "server.log")
        try:
            health = httpx.get(url + "/health", timeout=10).json()
            asyncio.run(load(url, images, min(args.clients, 4), args.warmup, 30.0, 1))  # warm-up, not counted
            before = httpx.get(url + "/health", timeout=10).json()["batching"]
            rss_before = rss_mb(proc)
            elapsed, lat, statuses = asyncio.run(load(url, images, args.clients, args.requests, args.max_seconds,
                                                      args.images_per_request))
            after = httpx.get(url + "/health", timeout=10).json()["batching"]
            rss_after = rss_mb(proc)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    done = sum(v for k, v in statuses.items() if isinstance(k, int))
    server_errors = sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500)
    failures = sum(v for k, v in statuses.items() if not isinstance(k, int))
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    batches = after["batches"] - before["batches"]
    imgs = after["images"] - before["images"]
    print(f"server: {health['backend']} backend, model {health['model']}, threads {args.threads}, "
          f"max batch {args.max_batch}, max wait {args.max_wait_ms} ms")
    print(f"{done} requests ({done * args.images_per_request} images) from {args.clients} concurrent clients "
          f"in {elapsed:.2f} s: {done / elapsed:.1f} requests/s, {done * args.images_per_request / elapsed:.1f} "
          f"images/s")
    print(f"latency ms: p50 {np.percentile(ms, 50):.1f}  p90 {np.percentile(ms, 90):.1f}  "
          f"p99 {np.percentile(ms, 99):.1f}  max {ms.max():.1f}")
    print(f"status: {dict(sorted(statuses.items(), key=str))}; 5xx: {server_errors}; failed requests: {failures}")
    busy = after["model_seconds"] - before["model_seconds"]
    print(f"batching: {batches} model calls for {imgs} images, mean {imgs / max(batches, 1):.2f} images per call; "
          f"model busy {busy:.2f} s of {elapsed:.2f} s")
    if rss_before is not None and rss_after is not None:
        print(f"server memory (RSS): {rss_before:.0f} MB after warm-up, {rss_after:.0f} MB after the load "
              f"({rss_after - rss_before:+.0f} MB)")
    return 1 if server_errors or failures else 0


def rss_mb(proc) -> float | None:
    """Resident memory of the server process we started (Linux), in MB."""
    if proc is None:
        return None
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":
    raise SystemExit(main())
