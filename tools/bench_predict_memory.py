"""Time and peak memory of `pcattn predict` on large clouds (run it on a quiet machine).

    .venv/bin/python tools/bench_predict_memory.py                     # 1e5 and 1e6 points
    .venv/bin/python tools/bench_predict_memory.py --sizes 100000 --checkpoint runs/x

Each measurement runs `pcattn predict` in a fresh process on a sphere of N points with
normals (binary PLY, or x y z nx ny nz text with --format xyzn) and reports the wall time and
the process's peak resident memory (ru_maxrss). Without --checkpoint, untrained
point_transformer_cls / point_transformer_seg checkpoints at 1024 training points are
written (time and memory do not depend on the weights). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pcattn.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
      file=sys.stderr)
"""


def write_cloud(path: Path, n: int, fmt: str) -> Path:
    import numpy as np

    p = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    if fmt == "xyzn":
        np.savetxt(path, np.hstack([p, p]), fmt="%.6f")
        return path
    from plyfile import PlyData, PlyElement

    rows = np.empty(n, dtype=[(k, "f4") for k in ("x", "y", "z", "nx", "ny", "nz")])
    for i, k in enumerate(("x", "y", "z")):
        rows[k], rows["n" + k] = p[:, i], p[:, i]
    PlyData([PlyElement.describe(rows, "vertex")]).write(str(path))
    return path


def untrained(folder: Path, name: str, model: dict) -> Path:
    from pcattn.engine.checkpoint import save_checkpoint
    from pcattn.engine.config import config_from_dict
    from pcattn.models import create_model

    run = config_from_dict({"model": {"name": name, **model},
                            "data": {"name": "modelnet40", "num_points": 1024}})
    net = create_model(run.model_name, **vars(run.model))
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "best.pt", {"model": net.state_dict(), "config": run.to_dict(),
                                         "dataset": {}, "epoch": 0})
    return folder


def measure(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True,
                          text=True)
    last = proc.stderr.strip().splitlines()[-1]
    out = json.loads(last)
    out["notes"] = [line for line in proc.stderr.splitlines()[:-1] if "pcattn" in line]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    p.add_argument("--checkpoint", nargs="+", metavar="RUN_DIR|CKPT",
                   help="default: untrained point_transformer_cls and _seg")
    p.add_argument("--format", choices=["ply", "xyzn"], default="ply")
    p.add_argument("--sampling", default="auto", choices=["auto", "fps", "voxel"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpts = args.checkpoint or [
            str(untrained(tmp / "cls", "point_transformer_cls",
                          {"num_classes": 40, "feature_channels": 3})),
            str(untrained(tmp / "seg", "point_transformer_seg",
                          {"num_classes": 50, "num_categories": 0, "feature_channels": 3}))]
        print("| checkpoint | points | format | seconds | peak MB | exit |")
        print("|---|---|---|---|---|---|")
        for n in args.sizes:
            src = write_cloud(tmp / f"cloud{n}.{args.format}", n, args.format)
            for ckpt in ckpts:
                t0 = time.perf_counter()
                # a segmenter writes the parts of every input point beside the cloud
                res = measure(["predict", ckpt, str(src), "--json", "--sampling",
                               args.sampling])
                print(f"| {ckpt} | {n} | {args.format} | {res['seconds']:.1f} "
                      f"({time.perf_counter() - t0:.1f} with start-up) | "
                      f"{res['peak_mb']:.0f} | {res['code']} |", flush=True)
                for note in res["notes"]:
                    print(f"<!-- {note} -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
