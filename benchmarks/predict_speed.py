"""The default user path's speed: ``crnn predict MODEL FOLDER`` against Tesseract 5, on one CPU core, one run.

For each backend (``auto``, the default, and ``torch``) runs exactly

    OMP_NUM_THREADS=1 taskset -c CORE crnn predict MODEL DIR --format tsv [--backend B]

on the first N1 and then the first N2 images of ``--images`` (a folder; e.g. the seed-parity CAPTCHAs) and
reports the marginal images/s, ``(N2 - N1) / (t(N2) - t(N1))``: start-up (imports, loading, and the fast
path's tracing) is paid once per command and cancels out; the start-up itself is reported beside it.
Tesseract 5 (``--psm 7``, ``OMP_THREAD_LIMIT=1``, same core) reads the same images over a list file, timed
the same way. Each command runs ``--repeats`` times; the fastest is kept (a busy machine only slows runs down).
The texts of every backend are compared with ``--backend torch``'s: they must be identical.

    .venv/bin/python benchmarks/predict_speed.py --model RUN/best.pt --images bench-out/seed_parity/test
                                                 [--counts 100 500] [--core 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict, repeats: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        if dt < best:
            best, out = dt, proc.stdout
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, help="folder of images")
    ap.add_argument("--counts", type=int, nargs=2, default=[100, 500])
    ap.add_argument("--backends", nargs="+", default=["auto", "torch"])
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    n1, n2 = args.counts
    if len(files) < n2:
        raise SystemExit(f"{args.images}: {len(files)} images, fewer than {n2}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_THREAD_LIMIT": "1"}
    pin = ["taskset", "-c", str(args.core)] if shutil.which("taskset") else []
    crnn = str(Path(sys.executable).with_name("crnn"))
    results: dict[str, dict] = {}
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for n in (n1, n2):
            d = Path(tmp) / f"first{n}"
            d.mkdir()
            for f in files[:n]:
                (d / f.name).symlink_to(f.resolve())
            dirs[n] = d
        for backend in args.backends:
            def cmd(n: int, backend: str = backend) -> list[str]:
                return pin + [crnn, "predict", args.model, str(dirs[n]), "--format", "tsv", "--backend", backend]

            t1, _ = timed(cmd(n1), env, args.repeats)
            t2, out = timed(cmd(n2), env, args.repeats)
            texts[backend] = [ln.split("\t")[1] if "\t" in ln else "" for ln in out.splitlines()]
            rate = (n2 - n1) / max(t2 - t1, 1e-9)
            results[f"crnn predict --backend {backend}"] = {"images_per_s": rate, "startup_s": t1 - n1 / rate,
                                                            "command": " ".join(cmd(n2))}
        tess = shutil.which("tesseract")
        if tess is None:
            print("tesseract not found: its row is skipped (apt-get install tesseract-ocr tesseract-ocr-eng)")
        else:
            ts = {}
            for n in (n1, n2):
                lst = Path(tmp) / f"list{n}.txt"
                lst.write_text("\n".join(str(f) for f in files[:n]) + "\n")
                ts[n], _ = timed(pin + [tess, str(lst), str(Path(tmp) / f"out{n}"), "--psm", "7"], env, args.repeats)
            rate = (n2 - n1) / max(ts[n2] - ts[n1], 1e-9)
            results["tesseract --psm 7"] = {"images_per_s": rate, "startup_s": ts[n1] - n1 / rate}
    same = {b: texts[b] == texts.get("torch", texts[b]) for b in texts}
    print(json.dumps({"model": args.model, "images": args.images, "counts": [n1, n2], "core": args.core,
                      "results": results, "texts_identical_to_torch": same}, indent=1))
    base = results.get("tesseract --psm 7", {}).get("images_per_s")
    for name, r in results.items():
        ratio = f" ({r['images_per_s'] / base:4.1f}x tesseract)" if base else ""
        print(f"{name:<32} {r['images_per_s']:8.0f} images/s marginal{ratio}, start-up {r['startup_s']:.2f} s")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
