"""Benchmarks: time and peak memory of ops against a peer measured in the same run.

Peak memory on the CPU is the process's peak resident set (``VmHWM``), reset before each
case through ``/proc/self/clear_refs`` (Linux); on CUDA, ``torch.cuda.max_memory_allocated``.
Numbers are the best of ``repeat`` runs, after one warm-up.
"""

from __future__ import annotations

import time
from typing import Callable

import torch


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(fn: Callable[[], object], *, device: str = "cpu", repeat: int = 3
            ) -> tuple[float, float]:
    """Best wall time (s) of ``fn`` and its peak memory above the level before it (MB)."""
    fn()  # warm-up
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
            base = _rss_mb("VmRSS")
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            used = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            used = _rss_mb("VmHWM") - base
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, used)
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


def bench_ops(quick: bool = False, torch_knn_max: int = 20_000) -> list[dict]:
    """kNN (K=16) and FPS at 32 clouds x 1k, 10k and 100k points, pcattn vs open3d.

    The pure-torch kNN is only timed up to ``torch_knn_max`` points per cloud (at 100k it
    takes about a minute here: top-k over 100k columns is its cost).
    """
    from pcattn.ops import farthest_point_sample, knn

    cases = [(32, 1024, 256), (1, 10_000, 1024)] + ([] if quick else [(1, 100_000, 4096)])
    rows = []
    print(f"{'op':<5} {'clouds x points':<16} {'impl':<22} {'time s':>9} {'peak MB':>9}")
    for b, n, s in cases:
        pos, batch = _clouds(b, n)
        knn_impls = {"pcattn (auto)": lambda: knn(pos, 16, batch),
                     "open3d per cloud": lambda: _open3d_knn(pos, batch, 16)}
        if n <= torch_knn_max:
            knn_impls["pcattn (torch)"] = lambda: knn(pos, 16, batch, backend="torch")
        fps_impls = {"pcattn": lambda: farthest_point_sample(pos, batch, num=s),
                     "open3d per cloud": lambda: _open3d_fps(pos, batch, s)}
        for op, impls in (("knn", knn_impls), ("fps", fps_impls)):
            for name, fn in impls.items():
                t, m = measure(fn, repeat=1 if n >= 100_000 else 3)
                label = f"{b} x {n}" + (f" -> {s}" if op == "fps" else "")
                print(f"{op:<5} {label:<16} {name:<22} {t:9.4f} {m:9.1f}", flush=True)
                rows.append({"op": op, "clouds": b, "points": n, "impl": name,
                             "seconds": t, "peak_mb": m})
    return rows


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
         fb(pnn.GroupedVectorAttention(c, c, groups=8), x, pos, idx)),
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


def bench_blocks(quick: bool = False) -> list[dict]:
    """Forward + backward of each block at B=8 x N=1024, K=16, C=64 next to PyG's layer
    computing the same thing; then global and linear attention on one large cloud."""
    import pcattn.nn as pnn

    rows = []
    print(f"{'block':<22} {'implementation':<32} {'fwd+bwd s':>10} {'peak MB':>9}")
    for block, impl, fn in _block_cases(8, 1024, 16, 64):
        t, m = measure(fn, repeat=2 if quick else 3)
        print(f"{block:<22} {impl:<32} {t:10.4f} {m:9.1f}", flush=True)
        rows.append({"block": block, "impl": impl, "seconds": t, "peak_mb": m})
    sizes = [2048, 8192] if quick else [2048, 8192, 32768]
    for n in sizes:
        x = torch.randn(n, 128, requires_grad=True)
        for name, module in (("GlobalSelfAttention", pnn.GlobalSelfAttention(128, heads=4)),
                             ("LinearAttention", pnn.LinearAttention(128, heads=4))):
            if name == "GlobalSelfAttention" and n > 8192:
                continue
            def run(module=module, x=x):
                module(x, None).sum().backward()
            t, m = measure(run, repeat=1)
            print(f"{'1 cloud x ' + str(n):<22} {name:<32} {t:10.4f} {m:9.1f}", flush=True)
            rows.append({"block": f"N={n}", "impl": name, "seconds": t, "peak_mb": m})
    return rows
