#!/usr/bin/env bash
# The ablation in docs/results.md: four trainings with the same budget, each evaluated on
# PTB-XL fold 10 by `ecgreport evaluate`. Usage: scripts/ablation.sh /path/to/ptb-xl [EPOCHS] [RUNS_DIR]
# One training at a time (2-core machines): about 4 x EPOCHS x 2.5 minutes on a 2-core CPU.
set -euo pipefail
data=${1:?usage: scripts/ablation.sh PTBXL_DIR [EPOCHS] [RUNS_DIR]}
epochs=${2:-3}
runs=${3:-runs/ablation}
mkdir -p "$runs"
declare -A variants=(
  [default]="--encoder resnet"
  [no-ot]="--encoder resnet --ot-weight 0"
  [no-nce]="--encoder resnet --nce-weight 0"
  [transformer]="--encoder transformer"
)
for name in default no-ot no-nce transformer; do
  if [ ! -f "$runs/$name/best.pt" ]; then
    # shellcheck disable=SC2086
    ecgreport train --data "$data" --out "$runs/$name" --epochs "$epochs" --patience "$epochs" ${variants[$name]} -q
  fi
  if [ ! -f "$runs/$name/eval.json" ]; then
    ecgreport evaluate --data "$data" --model "$runs/$name/best.pt" --json "$runs/$name/eval.json" -q >/dev/null
  fi
done
# With BUNDLE_EVAL=<evaluate --json of the shipped bundle>, docs/results.md and the README
# summary keep the shipped model's section too.
extra=()
if [ -n "${BUNDLE_EVAL:-}" ]; then extra=(--bundle-eval "$BUNDLE_EVAL" --readme README.md); fi
python "$(dirname "$0")/make_results.py" "${extra[@]}" --ablation "$runs" --out docs/results.md
