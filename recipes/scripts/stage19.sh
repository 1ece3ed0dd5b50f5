#!/bin/bash
# stage19.sh en|mobile|en20: builtin:en stage 19 (core 0, 75 min), builtin:en-mobile stage 10 (core 1, 95 min) or
# builtin:en stage 20 (core 0, 75 min), recipes/builtin_en.md; rerun with the same argument to resume from last.pt
cd /work/main
case "$1" in
  en) INIT=/work/runs/en_s18.pt; FROM=recipes/builtin_en_stage18/best.pt; OUT=/work/runs/builtin_en_s19
      CFG=configs/builtin_en_stage19.toml; CORE=0; BUDGET=75m
      EXTRA="/work/data/synth_en_s17_print.lmdb /work/data/synth_en_s17_lines.lmdb" ;;
  mobile) INIT=/work/runs/en_mobile_s9.pt; FROM=recipes/builtin_en_mobile_stage9/best.pt; OUT=/work/runs/en_mobile_s10
      CFG=configs/builtin_en_mobile_stage10.toml; CORE=1; BUDGET=95m
      EXTRA="/work/data/synth_en_s17_print.lmdb" ;;
  en20) INIT=/work/runs/en_s19.pt; FROM=src/crnn/assets/en.pt; OUT=/work/runs/builtin_en_s20
      CFG=configs/builtin_en_stage20.toml; CORE=0; BUDGET=75m
      EXTRA="/work/data/synth_en_s17_print.lmdb /work/data/synth_en_s17_lines.lmdb" ;;
  *) echo "usage: $0 en|mobile|en20"; exit 2 ;;
esac
[ -f $INIT ] || cp $FROM $INIT
D=/work/data
DATA="$D/synth_en_s18_scene5.lmdb $D/synth_en_s18_lines5.lmdb $D/synth_en_s18_scene6.lmdb $D/synth_en_s18_print.lmdb $D/synth_en_s18_lines.lmdb $EXTRA"
R=""; [ -f $OUT/last.pt ] && R="--resume"
OMP_NUM_THREADS=1 nice -n 5 taskset -c $CORE .venv/bin/crnn train --train $DATA --val $D/s5_val --init $INIT \
    --out $OUT --config $CFG --time-budget $BUDGET --no-progress --set train.threads=1 $R \
    > /work/runs/$(basename $OUT)_console_$(date +%H%M).txt 2>&1
