"""Serialized patch attention against kNN local attention at 1e4..1e6 points (run it on a
quiet machine; it takes tens of minutes).

    .venv/bin/python tools/bench_scale.py --out docs            # scale.csv / .md / .png
    .venv/bin/python tools/bench_scale.py --sizes 10000 100000 --cases serialized local

The same as `pcattn bench scale`; see pcattn/bench/scale.py for what is measured.
"""

from __future__ import annotations

import argparse

from pcattn.bench.scale import CASES, run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--patch-size", type=int, default=128, help="keys per query P")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    p.add_argument("--out", default=".", help="folder for scale.csv, scale.md, scale.png")
    args = p.parse_args()
    run(args.sizes, cases=args.cases, patch_size=args.patch_size, out=args.out,
        timeout=args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
