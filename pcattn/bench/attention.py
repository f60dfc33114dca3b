"""``pcattn bench attention``: the efficient-attention families against full attention.

For one cloud of ``N`` points (``C = 64``, 4 heads) and each family: forward + backward
time, peak memory (see :func:`pcattn.bench.suite.measure`) and, where the family holds full
attention's projections (``lin_qkv``, ``lin_out``) and so approximates it with the same
weights, the relative error ``||y - y_full|| / ||y_full||`` against exact full attention on
the same inputs. Every (family, N) runs in fresh processes, one for time and one for
memory. Writes ``attention.csv``, ``attention.md`` and ``attention.png`` (time and memory
against N, log-log).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Callable

import torch

from pcattn.bench.curves import prepare, write_curves

C, HEADS, K = 64, 4, 16

FAMILIES = ("full", "linear", "tokens", "local", "induced", "anchor", "cluster", "sinkhorn")
LABELS = {"full": "full (SDPA)", "linear": "linear", "tokens": "global tokens (8)",
          "local": f"kNN local (K={K})", "induced": "induced set (m=32)",
          "anchor": "FPS anchors (S=128)", "cluster": "clusters (8)",
          "sinkhorn": "Sinkhorn blocks (P=32)"}
SAME_WEIGHTS = {"full", "anchor", "cluster", "sinkhorn"}


def _case(family: str, pos: torch.Tensor) -> tuple[torch.nn.Module, Callable]:
    """The block of ``family`` and how to call it on ``x`` (set-up outside the timing)."""
    import pcattn.nn as pnn
    from pcattn.ops import knn

    if family == "full":
        return pnn.GlobalSelfAttention(C, heads=HEADS), lambda b, x: b(x)
    if family == "linear":
        return pnn.LinearAttention(C, heads=HEADS), lambda b, x: b(x)
    if family == "tokens":
        return pnn.GlobalTokens(C, num_tokens=8, heads=HEADS), lambda b, x: b(x)
    if family == "local":
        idx = knn(pos, K)
        return pnn.LocalSelfAttention(C, C, heads=HEADS), lambda b, x: b(x, pos, idx)
    if family == "induced":
        return pnn.InducedSetAttention(C, heads=HEADS, num_inducing=32), lambda b, x: b(x)
    if family == "anchor":
        return (pnn.AnchorAttention(C, heads=HEADS, num_anchors=128),
                lambda b, x: b(x, pos=pos))
    if family == "cluster":
        return pnn.ClusterAttention(C, heads=HEADS, num_clusters=8).eval(), lambda b, x: b(x)
    if family == "sinkhorn":
        return (pnn.SinkhornAttention(C, heads=HEADS, block_size=32),
                lambda b, x: b(x, pos=pos))
    raise ValueError(f"unknown family {family!r}; choose from {list(FAMILIES)}")


def _inputs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, generator=g), torch.randn(n, C, generator=g)


def _measure(family: str, n: int) -> tuple[float, float]:
    """In a fresh process: forward + backward time (s) and peak memory (MB)."""
    from pcattn.bench.suite import measure

    torch.manual_seed(0)
    pos, x = _inputs(n)
    x.requires_grad_(True)
    block, call = _case(family, pos)
    return measure(lambda: call(block, x).sum().backward(), repeat=2)


def _error(family: str, n: int) -> float:
    """In a fresh process: relative error of the family's output against full attention
    with the same projections, on the same inputs (NaN for families without them)."""
    if family not in SAME_WEIGHTS:
        return float("nan")
    import pcattn.nn as pnn

    torch.manual_seed(0)
    pos, x = _inputs(n)
    full = pnn.GlobalSelfAttention(C, heads=HEADS)
    block, call = _case(family, pos)
    block.load_state_dict(full.state_dict(), strict=False)
    with torch.no_grad():
        exact, approx = full(x), call(block, x)
    return float((approx - exact).norm() / exact.norm())


def run(sizes: list[int], *, families: list[str] | None = None, out: str | Path = ".",
        max_full: int = 32768) -> list[dict]:
    """Measure every family at every size (full attention and the error up to
    ``max_full`` points); print the table and write CSV, Markdown and PNG to ``out``."""
    families, out = prepare(families, FAMILIES, "families", out)
    ctx = mp.get_context("spawn")
    rows = []
    print(f"{'family':<24} {'N':>8} {'time s':>9} {'peak MB':>9} {'rel. error':>10}")
    for n in sizes:
        for family in families:
            if family == "full" and n > max_full:
                continue
            with ctx.Pool(1) as pool:
                seconds, _ = pool.apply(_measure, (family, n))
            os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 16)  # as pcattn.bench.suite does
            try:
                with ctx.Pool(1) as pool:
                    _, peak = pool.apply(_measure, (family, n))
            finally:
                del os.environ["MALLOC_MMAP_THRESHOLD_"]
            error = float("nan")
            if n <= max_full:
                with ctx.Pool(1) as pool:
                    error = pool.apply(_error, (family, n))
            row = {"family": LABELS[family], "n": n, "seconds": seconds, "peak_mb": peak,
                   "rel_error": error}
            rows.append(row)
            print(f"{row['family']:<24} {n:>8} {seconds:9.4f} {peak:9.1f} {error:10.4f}",
                  flush=True)
    _write(rows, out)
    return rows


def _write(rows: list[dict], out: Path) -> None:
    """``attention.csv``, ``attention.md`` and the log-log chart ``attention.png``."""
    lines = ["| family | N | fwd+bwd s | peak MB | rel. error vs full |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        err = "" if r["rel_error"] != r["rel_error"] else f"{r['rel_error']:.3f}"
        lines.append(f"| {r['family']} | {r['n']} | {r['seconds']:.3f} | "
                     f"{r['peak_mb']:.0f} | {err} |")
    write_curves(rows, out, "attention", series="family", table=lines,
                 time_title="forward + backward (s)")
