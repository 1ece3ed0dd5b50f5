#!/bin/bash
# stage 18 / mobile stage 9 fresh training samples (seeds 115-119; the long clean lines doubled to 48,000)
set -e
cd /work/main
C=.venv/bin/crnn
D=/work/data
$C synth $D/synth_en_s18_lines.lmdb --count 48000 --seed 115 --config configs/builtin_en_stage10_lines.toml --format lmdb --workers 2
$C synth $D/synth_en_s18_lines5.lmdb --count 5000 --seed 116 --config configs/builtin_en_stage5_lines.toml --format lmdb --workers 2
$C synth $D/synth_en_s18_print.lmdb --count 60000 --seed 117 --config configs/builtin_en_stage3_synth.toml --format lmdb --workers 2
$C synth $D/synth_en_s18_scene5.lmdb --count 80000 --seed 118 --config configs/builtin_en_stage5_scene.toml --format lmdb --workers 2
$C synth $D/synth_en_s18_scene6.lmdb --count 80000 --seed 119 --config configs/builtin_en_stage6_scene.toml --format lmdb --workers 2
echo RENDER-DONE
