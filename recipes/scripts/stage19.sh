#!/bin/bash
# stage 19 of builtin:en (core 0), recipes/builtin_en.md; rerun to resume from its last.pt
cd /work/main
[ -f /work/runs/en_s18.pt ] || cp recipes/builtin_en_stage18/best.pt /work/runs/en_s18.pt
DATA="/work/data/synth_en_s18_scene5.lmdb /work/data/synth_en_s18_lines5.lmdb /work/data/synth_en_s18_scene6.lmdb /work/data/synth_en_s18_print.lmdb /work/data/synth_en_s18_lines.lmdb /work/data/synth_en_s17_print.lmdb /work/data/synth_en_s17_lines.lmdb"
R=""; [ -f /work/runs/builtin_en_s19/last.pt ] && R="--resume"
OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/crnn train --train $DATA --val /work/data/s5_val --init /work/runs/en_s18.pt \
    --out /work/runs/builtin_en_s19 --config configs/builtin_en_stage19.toml --time-budget 75m --no-progress --set train.threads=1 $R \
    > /work/runs/s19_console_$(date +%H%M).txt 2>&1
