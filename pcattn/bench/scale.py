"""``pcattn bench scale``: serialized patch attention against kNN local attention as N grows.

On one cloud of ``N`` uniform points (default 1e4, 1e5, 1e6): forward + backward time and
peak memory of one block at ``C = 64``, 4 heads (:class:`~pcattn.nn.SerializedAttention`
with ``P`` keys per query, its encodings, and :class:`~pcattn.nn.LocalSelfAttention` /
:class:`~pcattn.nn.PointTransformerLayer` with ``K = 16``), each including the structure
it needs (serialization, kNN search; both also alone); then whole segmenters (``ptv3_seg``,
``point_transformer_seg``) in training (forward + backward) and inference (no grad).
Every case runs in two fresh processes (time, then memory; see :func:`pcattn.bench.suite.measure`)
that are stopped after ``timeout`` seconds; a case that fails or runs out shows as empty.
Writes ``scale.csv``, ``scale.md`` and ``scale.png`` (log-log against N).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import torch

from pcattn.bench.curves import prepare, write_curves

C, HEADS, K = 64, 4, 16
CASES = ("serialized", "serialized-knn", "serialized-none", "local", "point_transformer",
         "serialize", "knn", "ptv3_seg", "ptv3_seg:infer", "point_transformer_seg",
         "point_transformer_seg:infer")
LABELS = {"serialized": "SerializedAttention (grid CPE)",
          "serialized-knn": "SerializedAttention (kNN CPE)",
          "serialized-none": "SerializedAttention (no CPE)",
          "local": f"LocalSelfAttention (K={K})",
          "point_transformer": f"PointTransformerLayer (K={K})",
          "serialize": "ops.serialize (4 orders + cells)", "knn": f"ops.knn (K={K})",
          "ptv3_seg": "ptv3_seg (train step)", "ptv3_seg:infer": "ptv3_seg (inference)",
          "point_transformer_seg": "point_transformer_seg (train step)",
          "point_transformer_seg:infer": "point_transformer_seg (inference)"}


def _step(case: str, n: int, patch_size: int) -> Callable[[], object]:
    """The closure to measure for ``case`` on one cloud of ``n`` points."""
    import pcattn.nn as pnn
    from pcattn.ops import knn

    g = torch.Generator().manual_seed(0)
    pos = torch.rand(n, 3, generator=g)
    if case.startswith("ptv3_seg") or case.startswith("point_transformer_seg"):
        from torch_geometric.data import Batch, Data

        from pcattn.models import create_model

        name, _, mode = case.partition(":")
        extra = {"patch_size": patch_size} if name == "ptv3_seg" else {}
        model = create_model(name, num_classes=13, num_categories=0, **extra)
        data = Batch.from_data_list([Data(pos=pos)])
        target = torch.randint(0, 13, (n,), generator=g)
        if mode == "infer":
            model.eval()
            return lambda: torch.no_grad()(model)(data)
        return lambda: torch.nn.functional.cross_entropy(model(data), target).backward()
    if case == "serialize":
        from pcattn.ops import point_spacing, serialize

        return lambda: serialize(pos, grid_size=point_spacing(pos), neighbors=True)
    if case == "knn":
        return lambda: knn(pos, K)
    x = torch.randn(n, C, generator=g, requires_grad=True)
    if case.startswith("serialized"):
        encoding = {"serialized": "grid", "serialized-knn": "knn", "serialized-none": None}[case]
        block = pnn.SerializedAttention(C, C, heads=HEADS, patch_size=patch_size,
                                        pos_encoding=encoding, k=K)
        return lambda: block(x, pos).sum().backward()
    block = (pnn.LocalSelfAttention(C, C, heads=HEADS) if case == "local"
             else pnn.PointTransformerLayer(C, C))
    return lambda: block(x, pos, knn(pos, K)).sum().backward()


def child(case: str, n: int, patch_size: int) -> dict:
    """Measure one case in this process: best time (s) of 2 runs, or 1 at 1e6 and above,
    after a warm-up, and the peak memory above the level before (MB)."""
    from pcattn.bench.suite import measure

    torch.manual_seed(0)
    seconds, peak = measure(_step(case, n, patch_size), repeat=1 if n >= 10 ** 6 else 2)
    return {"seconds": seconds, "peak_mb": peak}


def _spawn(case: str, n: int, patch_size: int, timeout: float, memory: bool) -> dict | None:
    env = dict(os.environ)
    if memory:
        env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 16)  # freed blocks go back: RSS is the peak
    try:
        proc = subprocess.run([sys.executable, "-m", "pcattn.bench.scale", case, str(n),
                               str(patch_size)], capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        print(f"  {case} at N={n} failed: {tail}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(sizes: list[int], *, cases: list[str] | None = None, patch_size: int = 128,
        out: str | Path = ".", timeout: float = 1800.0) -> list[dict]:
    """Measure every case at every size; print the table and write CSV, Markdown, PNG."""
    cases, out = prepare(cases, CASES, "cases", out)
    rows = []
    print(f"{'case':<40} {'N':>8} {'time s':>9} {'peak MB':>9}")
    for case in cases:
        for n in sizes:
            timed = _spawn(case, n, patch_size, timeout, memory=False)
            mem = _spawn(case, n, patch_size, timeout, memory=True) if timed else None
            row = {"case": LABELS[case], "n": n,
                   "seconds": timed["seconds"] if timed else float("nan"),
                   "peak_mb": mem["peak_mb"] if mem else float("nan")}
            rows.append(row)
            print(f"{row['case']:<40} {n:>8} {row['seconds']:9.3f} {row['peak_mb']:9.0f}",
                  flush=True)
            if timed is None:  # larger N would only fail longer
                break
    _write(rows, out, patch_size)
    return rows


def _write(rows: list[dict], out: Path, patch_size: int) -> None:
    """``scale.csv``, ``scale.md`` and the log-log chart ``scale.png`` (whole models dashed)."""
    lines = [f"Patches of P = {patch_size} points; C = {C}, {HEADS} heads for the blocks.", "",
             "| case | N | time s | peak MB |", "|---|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['n']} | {r['seconds']:.3f} | {r['peak_mb']:.0f} |"
              for r in rows]
    write_curves(rows, out, "scale", series="case", table=lines,
                 time_title="time, forward + backward (s)",
                 style=lambda case: "s--" if "seg" in case else "o-")


if __name__ == "__main__":  # one case in a fresh process: case, N, patch size
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
