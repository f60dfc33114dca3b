#!/usr/bin/env bash
# The main job on the embedded default: set up if needed, train the small Point Transformer on
# the synthetic shapes, then draw its attention on one test cloud (PNG + offline HTML page in
# the run folder). Extra arguments go to `pcattn train` (e.g. --set ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup.sh"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
.venv/bin/pcattn train --config configs/point_transformer_synthetic.yaml "$@" | tee "$log"
run_dir="$(sed -n 's/.*; run folder: //p' "$log" | tail -n 1)"
if [ -z "$run_dir" ]; then
  echo "train_default.sh: pcattn train printed no 'run folder:' line" >&2
  exit 1
fi
echo "attention of the trained model on the first torus of the test split:"
.venv/bin/pcattn visualize "$run_dir" --sample test:torus
