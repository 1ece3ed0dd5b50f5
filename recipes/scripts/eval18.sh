#!/bin/bash
# eval18.sh MODEL TAG CORE: side-by-side checks of the stage rule (one thread on CORE)
M=$1; T=$2; C=$3
cd /work/main
mkdir -p /work/runs/eval18/$T
export OMP_NUM_THREADS=1
taskset -c $C .venv/bin/crnn eval $M /work/data/s5_val > /work/runs/eval18/$T/s5_val.txt 2>&1
taskset -c $C .venv/bin/crnn eval $M /work/data/clean_lines_check > /work/runs/eval18/$T/clean.txt 2>&1
taskset -c $C .venv/bin/python benchmarks/printed_words.py --model $M --no-tesseract --no-easyocr --no-ppocr --out /work/runs/eval18/$T/pw > /work/runs/eval18/$T/printed.txt 2>&1
taskset -c $C .venv/bin/crnn predict $M /work/runs/longline/*.png > /work/runs/eval18/$T/longline.txt 2>&1
echo done > /work/runs/eval18/$T/DONE
