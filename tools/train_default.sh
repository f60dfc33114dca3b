#!/usr/bin/env bash
# The main job on the embedded default: set up if needed, then train the small Point
# Transformer on the synthetic shapes. Extra arguments go to `pcattn train` (e.g. --set ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup.sh"
exec .venv/bin/pcattn train --config configs/point_transformer_synthetic.yaml "$@"
