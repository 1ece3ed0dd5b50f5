"""Inference speed on one CPU core: PyTorch and ONNX Runtime against Tesseract 5, in one run.

Images: single-line printed-word crops (the test set of ``benchmarks/printed_words.py``).
For each backend (PyTorch, the Python API's default ``Recognizer.load(MODEL)``, an exported ``.onnx`` file on
ONNX Runtime): throughput (images/s, after a warm-up, i.e. after start-up) and latency
percentiles at batch 1 (one image per call) and batch 64 (64 consecutive images, so mixed widths),
and ``predict()`` over the whole list: what ``crnn predict`` does (decode the files, sort by width,
batches of 64, CTC decoding), timed end to end. Several ``--model`` values are measured in one run,
e.g. the shipped ``builtin:en`` (``small``) next to a ``mobile`` model, each with its word accuracy.
Tesseract 5 (``--psm 7``, ``OMP_THREAD_LIMIT=1``) reads the same images in one process over
a list file, so its start-up is paid once and subtracted.

    .venv/bin/python benchmarks/infer_throughput.py --model builtin:en [--model builtin:en-mobile] [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from peers import onnx_twin, run_tesseract  # noqa: E402
from printed_words import build_test_set  # noqa: E402


def bench(rec, paths: list[Path], batch: int) -> dict:
    arrays, _ = rec.preprocess_images(paths)
    run = rec.run_arrays if hasattr(rec, "run_arrays") else None
    if run is None:
        from crnn.inference.pytorch import run_model

        def run(a, batch_size):
            return run_model(rec.model, a, rec.preprocess.channels, rec.device, batch_size)

    run(arrays[:batch], batch_size=batch)  # warm-up
    lat = []
    t0 = time.perf_counter()
    for i in range(0, len(arrays), batch):
        t = time.perf_counter()
        run(arrays[i:i + batch], batch_size=batch)
        lat.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - t0
    # preprocessing (decode + resize) is timed separately and added per image
    t = time.perf_counter()
    rec.preprocess_images(paths[:100])
    pre_ms = (time.perf_counter() - t) * 1000 / min(100, len(paths))
    return {"images_per_s": len(arrays) / (total + pre_ms * len(arrays) / 1000), "model_images_per_s":
            len(arrays) / total, "preprocess_ms_per_image": pre_ms, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def bench_predict(rec, paths: list[Path], labels: list[str]) -> dict:
    """The user's path: files in, texts out; after one warm-up pass."""
    rec.predict(paths[:64])
    t = time.perf_counter()
    preds = rec.predict(paths, batch_size=64)
    total = time.perf_counter() - t
    acc = sum(p.text == y for p, y in zip(preds, labels)) / len(labels)
    return {"images_per_s": len(paths) / total, "word_accuracy": acc}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="model path or builtin:NAME (repeatable; default builtin:en)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--out", default="bench-out/printed_words")
    args = ap.parse_args()

    import torch

    from crnn import Recognizer

    torch.set_num_threads(1)
    samples = build_test_set(Path(args.out), args.count, seed=12345)
    paths = [p for p, _ in samples]
    labels = [y for _, y in samples]
    results = {}
    for model in args.model or ["builtin:en"]:
        rec = Recognizer.load(model, runtime="torch")
        default = Recognizer.load(model)  # the Python API's default: ONNX Runtime when installed
        with tempfile.TemporaryDirectory() as tmp:
            ort = onnx_twin(rec, Path(tmp))
            for name, r in (("pytorch", rec), (f"Recognizer.load() ({default.runtime})", default),
                            ("exported .onnx", ort)):
                for batch in (1, 64):
                    results[f"{model} {name} batch {batch}"] = bench(r, paths, batch)
                results[f"{model} {name} predict()"] = bench_predict(r, paths, labels)
    _, tess = run_tesseract(samples, 1)
    results["tesseract --psm 7"] = {"images_per_s": tess}
    base = tess
    print(json.dumps({"models": args.model, "images": len(paths), "results": results}, indent=1))
    for name, r in results.items():
        extra = f" p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms per call" if "p50_ms" in r else ""
        if "word_accuracy" in r:
            extra += f" word accuracy {r['word_accuracy']:.1%}"
        print(f"{name:<40} {r['images_per_s']:8.0f} images/s ({r['images_per_s'] / base:4.1f}x tesseract){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
