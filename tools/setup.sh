#!/usr/bin/env bash
# Install what is missing, quickly when it is all there: the system library open3d needs,
# a virtual environment in .venv, the CPU build of torch 2.13.0, and pcattn (editable, with
# its test extras); with PCATTN_BROWSER_TESTS=1 also Debian's chromium. Sourced by
# tools/train_default.sh and tools/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  echo "[setup] installing libusb-1.0-0 (needed by open3d)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq libusb-1.0-0 >/dev/null; fi
fi

# the browser the page test drives (tools/test.sh asks for it; ~25 s the first time)
if [ "${PCATTN_BROWSER_TESTS:-}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "[setup] installing chromium (for the test of the attention page)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv" >&2
  python3 -m venv .venv
fi
stamp=.venv/.pcattn-installed
want="$(cat pyproject.toml tools/setup.sh | sha1sum | cut -c1-40)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing torch 2.13.0 (CPU) and pcattn[dev]" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # the CPU wheel first: a bare 'torch' requirement would pull a multi-GB CUDA build
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
