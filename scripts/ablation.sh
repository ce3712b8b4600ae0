#!/usr/bin/env bash
# The model round-2 ablation in docs/results.md: one training per row, one at a time (2-core
# machines), each evaluated on PTB-XL fold 10 by `ecgreport evaluate`. Resumable: rerun it and
# finished rows are skipped, an interrupted training continues from its last.pt.
#
#   scripts/ablation.sh PTBXL_DIR [RUNS_DIR]
#
# Rows (all on the normalised report text, seed 0, CE + OT + paired InfoNCE):
#   short     the first model's recipe: 14 epochs, patience 4, no augmentation
#   long      the same with the budget of the other rows: 20 epochs, patience 5
#   aug       + ECG augmentations (--augment 0.5)
# A wider ResNet (--channels 64,128,256,256) is not a row: benchmarks/encoder_width.py measures
# its encoder at about twice the cost and its bundle over 25 MB, both beyond what #14 allows.
# About 25-40 minutes per row on a 2-core CPU.
set -euo pipefail
data=${1:?usage: scripts/ablation.sh PTBXL_DIR [RUNS_DIR]}
runs=${2:-runs/r2}
mkdir -p "$runs"
declare -A args=(
  [short]="--epochs 14 --patience 4 --augment 0"
  [long]="--epochs 20 --patience 5 --augment 0"
  [aug]="--epochs 20 --patience 5 --augment 0.5"
)
for name in short aug long; do
  run=$runs/$name
  if [ ! -f "$run/done" ]; then
    resume=(); [ -f "$run/last.pt" ] && resume=(--resume)
    # shellcheck disable=SC2086
    ecgreport train --data "$data" --out "$run" ${args[$name]} "${resume[@]}" > "$runs/$name.log" 2>&1
    touch "$run/done"
  fi
  if [ ! -f "$run/eval10.json" ]; then
    ecgreport evaluate --data "$data" --model "$run/best.pt" --json "$run/eval10.json" -q > "$run/eval10.txt"
  fi
done
# With BUNDLE_EVAL=<evaluate --json of the shipped bundle>, docs/results.md and the README
# summary keep the shipped model's section too.
extra=()
if [ -n "${BUNDLE_EVAL:-}" ]; then extra=(--bundle-eval "$BUNDLE_EVAL" --readme README.md); fi
python "$(dirname "$0")/make_results.py" "${extra[@]}" --ablation "$runs" --out docs/results.md
