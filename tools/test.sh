#!/usr/bin/env bash
# The test suite: set up if needed, then pytest (the `slow` marker is not selected).
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup.sh"
exec .venv/bin/python -m pytest -q "$@"
