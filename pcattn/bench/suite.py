"""Benchmarks: time and peak memory of ops against a peer measured in the same run.

Peak memory: :mod:`pcattn.bench.memory`.
Numbers are the best of ``repeat`` runs, after one warm-up. Each case runs in fresh
processes (one for time, one for memory, see :func:`run_suite`) so that one case's freed
memory does not hide the next one's peak.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch

from pcattn.bench.memory import peak_reset, peak_since


def measure(fn: Callable[[], object], *, device: str = "cpu", repeat: int = 3,
            warmup: bool = True) -> tuple[float, float]:
    """Best wall time (s) of ``fn`` and its peak memory above the level before it (MB)."""
    if warmup:
        fn()
    best, peak = float("inf"), 0.0
    dev = torch.device(device)
    for _ in range(repeat):
        base = peak_reset(dev)
        t0 = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, peak_since(base, dev))
    return best, peak


def _clouds(num_clouds: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(num_clouds * n, 3, generator=g)
    return pos, torch.arange(num_clouds).repeat_interleave(n)


def _open3d_knn(pos, batch, k):
    import open3d.core as o3c

    arr = pos.numpy()
    for c in range(int(batch[-1]) + 1):
        cloud = o3c.Tensor.from_numpy(arr[(batch == c).numpy()])
        nns = o3c.nns.NearestNeighborSearch(cloud)
        nns.knn_index()
        nns.knn_search(cloud, k)


def _open3d_fps(pos, batch, num):
    import open3d as o3d

    arr = pos.double().numpy()
    for c in range(int(batch[-1]) + 1):
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(arr[(batch == c).numpy()]))
        pc.farthest_point_down_sample(num)


def _block_cases(b: int, n: int, k: int, c: int) -> list[tuple[str, str, Callable]]:
    """(block, implementation, forward+backward closure) on B clouds x N points."""
    from torch import nn
    from torch_geometric import nn as pyg

    import pcattn.nn as pnn
    from pcattn.ops import knn, neighbors_to_edge_index

    pos, batch = _clouds(b, n)
    x = torch.randn(b * n, c, requires_grad=True)
    idx = knn(pos, k, batch)  # [M, K], self included
    edge_index = neighbors_to_edge_index(idx)  # [2, M*K]

    def fb(module, *args, **kwargs):
        def run():
            out = module(*args, **kwargs)
            out.sum().backward()
        return run

    pt = pnn.PointTransformerLayer(c, c, pos_nn=nn.Linear(3, c), attn_nn=nn.Identity())
    pyg_pt = pyg.PointTransformerConv(c, c, pos_nn=nn.Linear(3, c), add_self_loops=False)
    cases = [
        ("vector attention (PT)", "pcattn PointTransformerLayer", fb(pt, x, pos, idx)),
        ("vector attention (PT)", "PyG PointTransformerConv", fb(pyg_pt, x, pos, edge_index)),
        ("vector attention (PT)", "pcattn PT, default MLPs",
         fb(pnn.PointTransformerLayer(c, c), x, pos, idx)),
        ("grouped vector attn", "pcattn GroupedVectorAttention",
         fb(pnn.GroupedVectorAttention(c, c, heads=8), x, pos, idx)),
        ("local scalar attn", "pcattn LocalSelfAttention",
         fb(pnn.LocalSelfAttention(c, c, heads=4), x, pos, idx)),
        ("local scalar attn", "PyG TransformerConv",
         fb(pyg.TransformerConv(c, c // 4, heads=4), x, edge_index)),
        ("graph attention", "pcattn GraphAttention",
         fb(pnn.GraphAttention(c, c, heads=4), x, edge_index)),
        ("graph attention", "PyG GATv2Conv", fb(pyg.GATv2Conv(c, c // 4, heads=4), x, edge_index)),
        ("global attention", "pcattn GlobalSelfAttention",
         fb(pnn.GlobalSelfAttention(c, heads=4), x, batch)),
        ("linear attention", "pcattn LinearAttention",
         fb(pnn.LinearAttention(c, heads=4), x, batch)),
        ("offset attention", "pcattn OffsetAttention", fb(pnn.OffsetAttention(c), x, batch)),
    ]
    return cases


def _op_cases(quick: bool, torch_knn_max: int = 20_000) -> list[tuple[str, str, str, Callable]]:
    """(op, size, implementation, closure): kNN (K=16) and FPS at 32 x 1k, 10k, 100k."""
    from pcattn.ops import farthest_point_sample, knn

    cases = []
    sizes = [(32, 1024, 256), (1, 10_000, 1024)] + ([] if quick else [(1, 100_000, 4096)])
    for b, n, s in sizes:
        pos, batch = _clouds(b, n)
        label = f"{b} x {n}"
        cases += [("knn", label, "pcattn (auto)", lambda p=pos, c=batch: knn(p, 16, c)),
                  ("knn", label, "open3d per cloud", lambda p=pos, c=batch: _open3d_knn(p, c, 16))]
        if n <= torch_knn_max:  # at 100k the top-k over 100k columns takes about a minute
            cases.append(("knn", label, "pcattn (torch)",
                          lambda p=pos, c=batch: knn(p, 16, c, backend="torch")))
        label = f"{b} x {n} -> {s}"
        cases += [("fps", label, "pcattn (auto)",
                   lambda p=pos, c=batch, s=s: farthest_point_sample(p, c, num=s)),
                  ("fps", label, "pcattn (torch)", lambda p=pos, c=batch, s=s:
                   farthest_point_sample(p, c, num=s, backend="torch")),
                  ("fps", label, "open3d per cloud",
                   lambda p=pos, c=batch, s=s: _open3d_fps(p, c, s))]
    return cases


def _large_cloud_cases(quick: bool) -> list[tuple[str, str, str, Callable]]:
    """Global and linear attention, forward + backward, on one cloud of N points, C=128."""
    import pcattn.nn as pnn

    cases = []
    for n in [2048, 8192] if quick else [2048, 8192, 32768]:
        x = torch.randn(n, 128, requires_grad=True)
        blocks = [("GlobalSelfAttention", pnn.GlobalSelfAttention(128, heads=4)),
                  ("LinearAttention", pnn.LinearAttention(128, heads=4))]
        for name, module in blocks[1:] if n > 8192 else blocks:
            def run(module=module, x=x):
                module(x, None).sum().backward()
            cases.append(("one cloud", f"N={n}", name, run))
    return cases


_SUITES = {
    "ops": lambda quick: _op_cases(quick),
    "blocks": lambda quick: [(b, "8 x 1024, K=16, C=64", i, f)
                             for b, i, f in _block_cases(8, 1024, 16, 64)],
    "large": _large_cloud_cases,
}


def _measure_case(suite: str, quick: bool, i: int) -> tuple[float, float]:
    """Runs in a fresh process: build the suite's inputs, measure case ``i`` only."""
    torch.manual_seed(0)
    fn = _SUITES[suite](quick)[i][3]
    return measure(fn, repeat=3)


def run_suite(suite: str, quick: bool = False) -> list[dict]:
    """Measure every case of a suite, each in a new process (clean peak memory); print a
    table and return its rows."""
    import multiprocessing as mp

    labels = [case[:3] for case in _SUITES[suite](quick)]
    ctx = mp.get_context("spawn")
    rows = []
    print(f"{'what':<22} {'size':<22} {'implementation':<30} {'time s':>8} {'peak MB':>8}")
    for i, (what, size, impl) in enumerate(labels):
        with ctx.Pool(1) as pool:  # time: the allocator as users run it
            seconds, _ = pool.apply(_measure_case, (suite, quick, i))
        # memory: a fixed mmap threshold makes glibc return every large block on free, so
        # peak RSS counts a case's large tensors even where a warm-up freed same-size blocks
        # (it slows allocation, hence the separate process for timing)
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 16)
        try:
            with ctx.Pool(1) as pool:
                _, peak = pool.apply(_measure_case, (suite, quick, i))
        finally:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        print(f"{what:<22} {size:<22} {impl:<30} {seconds:8.4f} {peak:8.1f}", flush=True)
        rows.append({"what": what, "size": size, "impl": impl, "seconds": seconds,
                     "peak_mb": peak})
    return rows
