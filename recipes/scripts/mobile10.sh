#!/bin/bash
# stage 10 of builtin:en-mobile (core 1), recipes/builtin_en.md; rerun to resume from its last.pt
cd /work/main
[ -f /work/runs/en_mobile_s9.pt ] || cp recipes/builtin_en_mobile_stage9/best.pt /work/runs/en_mobile_s9.pt
DATA="/work/data/synth_en_s18_scene5.lmdb /work/data/synth_en_s18_lines5.lmdb /work/data/synth_en_s18_scene6.lmdb /work/data/synth_en_s18_print.lmdb /work/data/synth_en_s18_lines.lmdb /work/data/synth_en_s17_print.lmdb"
R=""; [ -f /work/runs/en_mobile_s10/last.pt ] && R="--resume"
OMP_NUM_THREADS=1 nice -n 5 taskset -c 1 .venv/bin/crnn train --train $DATA --val /work/data/s5_val --init /work/runs/en_mobile_s9.pt \
    --out /work/runs/en_mobile_s10 --config configs/builtin_en_mobile_stage10.toml --time-budget 95m --no-progress --set train.threads=1 $R \
    > /work/runs/m10_console_$(date +%H%M).txt 2>&1
