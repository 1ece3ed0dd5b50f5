"""Seed parity: the original project's task, done with default settings in 10 minutes on this CPU.

Generates 2,000 label-named CAPTCHA images (4-6 digits and capitals, 160x60, the ``captcha`` package)
and 500 held-out ones with different texts, runs exactly

    crnn train --train DIR --out RUN --time-budget 10m

and reports held-out word accuracy, CER, training images/s and the validation-accuracy curve over time.
CAPTCHA noise comes from ``secrets``, so each data generation differs; the texts are seeded.

    .venv/bin/python benchmarks/seed_parity.py [--budget 10m] [--out bench-out/seed_parity] [--set k=v ...]
                                                [--init builtin:en]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-out/seed_parity")
    ap.add_argument("--budget", default="10m")
    ap.add_argument("--train-count", type=int, default=2000)
    ap.add_argument("--test-count", type=int, default=500)
    ap.add_argument("--set", action="append", default=[], help="extra config overrides (not the default run)")
    ap.add_argument("--init", help="fine-tune from this model instead of training from scratch")
    ap.add_argument("--tag", default="", help="suffix for the run folder")
    args = ap.parse_args()

    from crnn import Recognizer
    from crnn.data.captcha import generate_captchas
    from crnn.training.runlog import read_metrics

    root = Path(args.out)
    train_dir, test_dir = root / "train", root / "test"
    if len(list(train_dir.glob("*.png"))) < args.train_count:
        print(f"generating {args.train_count} training CAPTCHAs ...", flush=True)
        texts = set(generate_captchas(train_dir, args.train_count, seed=1))
    else:
        texts = {p.stem for p in train_dir.glob("*.png")}
    if len(list(test_dir.glob("*.png"))) < args.test_count:
        print(f"generating {args.test_count} held-out CAPTCHAs ...", flush=True)
        generate_captchas(test_dir, args.test_count, seed=2, exclude=texts)

    run = root / f"run-{time.strftime('%Y%m%d-%H%M%S')}{args.tag}"
    cmd = ["crnn", "train", "--train", str(train_dir), "--out", str(run), "--time-budget", args.budget]
    if args.init:  # a CAPTCHA reader answers only with the CAPTCHA alphabet, as these runs always did
        cmd += ["--init", args.init, "--set", "data.init_charset=restrict"]
    for s in args.set:
        cmd += ["--set", s]
    print("$ " + " ".join(cmd), flush=True)
    exe = Path(sys.executable).with_name("crnn")
    t0 = time.time()
    proc = subprocess.run([str(exe)] + cmd[1:], capture_output=True, text=True)
    wall = time.time() - t0
    if run.is_dir():  # what the run printed (its thread choice, the plateau, the charset) stays with it
        (run / "console.txt").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return proc.returncode
    m = re.search(r"at (\d+) images/s", proc.stdout)
    ips = float(m.group(1)) if m else float("nan")

    results = {}
    for name in ("best.pt", "last.pt"):
        rec = Recognizer.load(run / name)
        metrics, _, _ = rec.evaluate(test_dir)
        results[name] = {"word_accuracy": metrics.accuracy, "cer": metrics.cer, "samples": metrics.n}
    curve = [(round(r["elapsed_s"]), r["val_accuracy"]) for r in read_metrics(run / "metrics.csv")]
    marks = {}
    for minute in (1, 2, 3, 5, 7, 10):
        pts = [acc for t, acc in curve if t <= minute * 60]
        if pts:
            marks[f"{minute}m"] = max(pts)
    summary = {
        "command": " ".join(cmd), "run": str(run), "wall_s": round(wall), "train_images_per_s": ips,
        "held_out": results, "val_accuracy_by_time": marks, "epochs": len(curve),
    }
    print(json.dumps(summary, indent=2))
    best = results["best.pt"]
    print(f"seed parity: held-out word accuracy {best['word_accuracy']:.2%}, CER {best['cer']:.4f}, "
          f"{ips:.0f} training images/s, {len(curve)} epochs in {args.budget}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
