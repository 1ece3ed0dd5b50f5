"""Steps to leave CTC's blank plateau, and to the first correct validation word, per preset, from scratch.

On the seed-parity CAPTCHAs (``benchmarks/seed_parity.py``'s generation; 2,000 training images by default,
500 held-out), for each preset (``--arch small|mobile|half|paper``), each lever (a set of ``--set`` overrides
to compare with the defaults, e.g. ``--lever train.lr=1e-3`` ``--lever train.warmup=0.02``) and each seed, runs

    crnn train --train DATA --out RUN --time-budget 5m --arch PRESET --seed S [--set k=v ...]
    crnn eval RUN/best.pt TEST --json

and records:
- the step and time at which the run left the blank plateau (``learning started at step N (T s)`` in
  RUN/train.log: training batches read at CER <= 0.7), or none;
- the first epoch whose validation word accuracy is above 0 (RUN/metrics.csv: its epoch, the step and the
  elapsed seconds at that epoch's end, so the first correct word is known to the epoch, not the step);
- the best and final validation accuracy, the held-out word accuracy and CER of best.pt, images/s.

Writes OUT/results.json and prints a markdown table.

    .venv/bin/python benchmarks/plateau_steps.py [--budget 5m | --epochs N] [--presets small mobile half paper]
                                                 [--lever train.lr=1e-3] [--lever train.warmup=0.02 ...]
                                                 [--seeds 0 1] [--train-count 2000] [--threads 1]
                                                 [--out bench-out/plateau_steps] [--set k=v ...]
    .venv/bin/python benchmarks/plateau_steps.py --quick   # smoke run: 200 images, small and mobile, 20 s
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from learning_curve import captcha_data, learned_from_log  # noqa: E402

PRESETS = ["small", "mobile", "half", "paper"]


def first_correct(metrics_csv: Path) -> dict:
    """From a run's metrics.csv: the first epoch with validation accuracy > 0, the best and the final accuracy."""
    from crnn.training.runlog import read_metrics

    try:
        rows = read_metrics(metrics_csv)
    except OSError:
        return {}
    accs = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
    first = next((r for r in rows if (r.get("val_accuracy") or 0) > 0), None)
    return {
        "epochs": len(rows), "steps": int(rows[-1]["step"]) if rows else 0,
        "first_correct_epoch": int(first["epoch"]) if first else None,
        "first_correct_step": int(first["step"]) if first else None,
        "first_correct_s": round(first["elapsed_s"]) if first else None,
        "best_val_accuracy": max(accs) if accs else None, "final_val_accuracy": accs[-1] if accs else None,
        "images_per_s": rows[-1].get("images_per_s") if rows else None,
    }


def run_one(exe: Path, train: Path, test: Path, run: Path, preset: str, seed: int, budget: str | None,
            epochs: int | None, sets: list[str], env: dict, env_prefix: str) -> dict:
    cmd = ["crnn", "train", "--train", str(train), "--out", str(run), "--arch", preset, "--seed", str(seed),
           "--no-progress"]
    if budget:
        cmd += ["--time-budget", budget]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    for s in sets:
        cmd += ["--set", s]
    print(f"$ {env_prefix}{shlex.join(cmd)}", flush=True)
    t0 = time.time()
    proc = subprocess.run([str(exe)] + cmd[1:], capture_output=True, text=True, env=env)
    step, step_s = learned_from_log(run / "train.log")
    rec = {"command": env_prefix + shlex.join(cmd), "run": str(run), "exit": proc.returncode,
           "wall_s": round(time.time() - t0), "learned_step": step, "learned_s": step_s}
    rec.update(first_correct(run / "metrics.csv"))
    if proc.returncode not in (0, 3):  # 3: ended on the blank plateau; its files are still written
        rec["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(proc.stdout[-2000:], proc.stderr[-2000:], flush=True)
        return rec
    ev = ["crnn", "eval", str(run / "best.pt"), str(test), "--json"]
    out = subprocess.run([str(exe)] + ev[1:], capture_output=True, text=True, env=env)
    if out.returncode == 0:
        s = json.loads(out.stdout)
        rec.update(held_out_accuracy=s["word_accuracy"], held_out_cer=s["cer"])
    else:
        rec["error"] = (out.stderr or out.stdout).strip().splitlines()[-1:]
    return rec


def _f(v, kind: str = "") -> str:
    if v is None:
        return "—"
    if kind == "%":
        return f"{v:.1%}"
    if kind == "cer":
        return f"{v:.3f}"
    return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)


def table(results: list[dict]) -> str:
    rows = ["| preset | lever | seed | left plateau: step | (s) | first correct val word: epoch | step | (s) | "
            "steps run | best val | held-out | CER | images/s | exit |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['preset']} | {r['lever']} | {r['seed']} | {_f(r.get('learned_step'))} | "
                    f"{_f(r.get('learned_s'))} | {_f(r.get('first_correct_epoch'))} | "
                    f"{_f(r.get('first_correct_step'))} | {_f(r.get('first_correct_s'))} | "
                    f"{_f(r.get('steps'))} | {_f(r.get('best_val_accuracy'), '%')} | "
                    f"{_f(r.get('held_out_accuracy'), '%')} | {_f(r.get('held_out_cer'), 'cer')} | "
                    f"{_f(r.get('images_per_s'))} | {r['exit']} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder (default bench-out/plateau_steps; --quick: "
                                  "bench-out/plateau_steps-quick)")
    ap.add_argument("--budget", help="training time per run (default 5m, or none with --epochs; --quick: 20s)")
    ap.add_argument("--epochs", type=int, help="epoch limit per run (a step limit: steps = epochs x batches)")
    ap.add_argument("--presets", nargs="+", choices=PRESETS, help="default: all four (--quick: small mobile)")
    ap.add_argument("--lever", nargs="+", action="append", default=[], metavar="KEY=VALUE",
                    help="one variant to compare with the defaults (its overrides); repeat for several")
    ap.add_argument("--no-baseline", action="store_true", help="run only the --lever variants")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--train-count", type=int, help="training images (default 2000; --quick: 200)")
    ap.add_argument("--test-count", type=int, help="held-out images (default 500; --quick: 100)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the crnn subprocesses (default: inherited)")
    ap.add_argument("--set", action="append", default=[], help="config overrides for every run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 images, small and mobile, 20 s budgets")
    args = ap.parse_args()

    root = Path(args.out or ("bench-out/plateau_steps-quick" if args.quick else "bench-out/plateau_steps"))
    budget = args.budget or (None if args.epochs else ("20s" if args.quick else "5m"))
    presets = args.presets or (["small", "mobile"] if args.quick else PRESETS)
    n_train = args.train_count or (200 if args.quick else 2000)
    n_test = args.test_count or (100 if args.quick else 500)
    variants = ([] if args.no_baseline else [("defaults", [])]) + [(" ".join(lv), lv) for lv in args.lever]
    if not variants:
        ap.error("--no-baseline needs at least one --lever")
    env, env_prefix = dict(os.environ), ""
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
        env_prefix = f"OMP_NUM_THREADS={args.threads} "

    subsets, test = captcha_data(root / "captcha", [n_train], n_train, n_test)
    exe = Path(sys.executable).with_name("crnn")
    runs = root / f"runs-{time.strftime('%Y%m%d-%H%M%S')}"
    results: list[dict] = []
    for vi, (name, sets) in enumerate(variants):
        for preset in presets:
            for seed in args.seeds:
                run = runs / f"{preset}-v{vi}-s{seed}"
                rec = run_one(exe, subsets[n_train], test, run, preset, seed, budget, args.epochs,
                              args.set + sets, env, env_prefix)
                rec.update(preset=preset, lever=name, seed=seed, budget=budget, epoch_limit=args.epochs,
                           train_images=n_train)
                results.append(rec)
                print(f"  {preset} [{name}] seed {seed}: left the plateau at step {_f(rec.get('learned_step'))}, "
                      f"first correct val word in epoch {_f(rec.get('first_correct_epoch'))} (step "
                      f"{_f(rec.get('first_correct_step'))}), held-out {_f(rec.get('held_out_accuracy'), '%')}",
                      flush=True)
                (root / "results.json").write_text(json.dumps({"results": results}, indent=2))
    print()
    print(table(results))
    print(f"\nresults: {root / 'results.json'}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
