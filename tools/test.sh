#!/usr/bin/env bash
# The test suite: set up if needed, then pytest (the `slow` marker is not selected).
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PCATTN_BROWSER_TESTS=1  # the attention page is tested in a real browser: install it
source "$root/tools/setup.sh"
exec .venv/bin/python -m pytest -q "$@"
