#!/usr/bin/env bash
# Run a command while N busy loops (`sh -c "while :; do :; done"`, same priority) compete for the CPU:
# the "2 cores shared with two busy processes" machine of the training benchmarks.
#   benchmarks/with_busy_loops.sh 2 .venv/bin/python benchmarks/seed_parity.py
set -euo pipefail
n="$1"; shift
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$n"); do sh -c 'while :; do :; done' & pids+=("$!"); done
echo "with $n busy loops (pids ${pids[*]}): $*" >&2
"$@"
