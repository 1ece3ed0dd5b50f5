#!/bin/bash
# stage 18 of builtin:en (core 1) and stage 9 of builtin:en-mobile (core 0), recipes/builtin_en.md; rerun to resume
cd /work/main
[ -f /work/runs/en_s17.pt ] || { echo "stage 17's best.pt is needed as /work/runs/en_s17.pt"; exit 1; }
[ -f /work/runs/en_mobile_s8.pt ] || cp recipes/builtin_en_mobile_stage8/best.pt /work/runs/en_mobile_s8.pt
DATA="/work/data/synth_en_s18_scene5.lmdb /work/data/synth_en_s18_lines5.lmdb /work/data/synth_en_s18_scene6.lmdb /work/data/synth_en_s18_print.lmdb /work/data/synth_en_s18_lines.lmdb"
R=""; [ -f /work/runs/builtin_en_s18/last.pt ] && R="--resume"
OMP_NUM_THREADS=1 nice -n 5 taskset -c 1 .venv/bin/crnn train --train $DATA --val /work/data/s5_val --init /work/runs/en_s17.pt \
    --out /work/runs/builtin_en_s18 --config configs/builtin_en_stage18.toml --time-budget 100m --no-progress --set train.threads=1 $R \
    > /work/runs/s18_console_$(date +%H%M).txt 2>&1 &
sleep 60  # the two runs decode their samples one after the other (memory peaks while decoding)
R=""; [ -f /work/runs/en_mobile_s9/last.pt ] && R="--resume"
OMP_NUM_THREADS=1 nice -n 5 taskset -c 0 .venv/bin/crnn train --train $DATA --val /work/data/s5_val --init /work/runs/en_mobile_s8.pt \
    --out /work/runs/en_mobile_s9 --config configs/builtin_en_mobile_stage9.toml --time-budget 100m --no-progress --set train.threads=1 $R \
    > /work/runs/m9_console_$(date +%H%M).txt 2>&1 &
wait
