"""Memory of a multi-process training run: the peak proportional set size (PSS) of all its processes.

PSS counts a page shared by N processes as 1/N in each, so the sum over a run's processes is the memory the
run really holds; RSS would count a shared page once per process. Samples every 0.5 s, Linux only
(``/proc/PID/smaps_rollup``).

    .venv/bin/python benchmarks/ddp_memory.py --train /work/data/synth_en_s14_scene5.lmdb --nproc 2

prints one JSON line: peak PSS of the whole run and of its largest process, peak RSS summed, the lowest
``MemAvailable`` seen, the wall time, and the seconds from the start to the first logged training step.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return out


def kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def mem_available_kib() -> int:
    m = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return int(m.group(1)) if m else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--time-budget", default="30s", help="training time after the data is loaded")
    ap.add_argument("--out", help="run folder (default: a new temporary one)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    run = Path(args.out or tempfile.mkdtemp(prefix="ddp-memory-")) / "run"
    cmd = [sys.executable, "-m", "crnn", "train", "--nproc", str(args.nproc), "--train", *args.train, "--out", str(run),
           "--time-budget", args.time_budget, "--no-progress"] + [x for kv in args.set for x in ("--set", kv)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_pss = peak_rss = peak_one = 0
    low_avail = mem_available_kib()
    first_step = None
    while proc.poll() is None:
        pids = tree(proc.pid)
        pss = [kib(p, "Pss") for p in pids]
        peak_pss, peak_one = max(peak_pss, sum(pss)), max(peak_one, max(pss, default=0))
        peak_rss = max(peak_rss, sum(kib(p, "Rss") for p in pids))
        low_avail = min(low_avail, mem_available_kib())
        log = run / "train.log"
        if first_step is None and log.exists() and " iter " in log.read_text(encoding="utf-8"):
            first_step = time.monotonic() - t0
        time.sleep(0.5)
    err = proc.stderr.read() if proc.stderr else ""
    print(json.dumps({"command": " ".join(cmd), "returncode": proc.returncode,
                      "peak_pss_mb": round(peak_pss / 1024), "peak_pss_largest_process_mb": round(peak_one / 1024),
                      "peak_rss_sum_mb": round(peak_rss / 1024), "lowest_mem_available_mb": round(low_avail / 1024),
                      "wall_s": round(time.monotonic() - t0, 1),
                      "first_step_s": None if first_step is None else round(first_step, 1)}))
    if proc.returncode not in (0, 3):  # 3: trained, but too briefly to leave the plateau (a memory run may)
        print(err[-2000:], file=sys.stderr)
        return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
