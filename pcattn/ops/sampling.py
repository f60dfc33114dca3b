"""Farthest point sampling, batched over the clouds of a packed batch."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from pcattn.ops.backend import has_open3d
from pcattn.ops.batching import check_batch, counts_and_ptr, equal_cloud_size, unpack
from pcattn.ops.checks import check_count, check_points


def farthest_point_sample(
    pos: Tensor, batch: Tensor | None = None, *, ratio: float | None = None,
    num: int | None = None, random_start: bool = False,
    generator: torch.Generator | None = None, backend: str = "auto",
    equal_clouds: int | None = None,
) -> Tensor:
    """Farthest point sampling (PointNet++), per cloud, all clouds stepped together.

    Each chosen point is the one farthest from those chosen before it in its cloud. The
    first point is the one farthest from the cloud's centroid, so the selected set does not
    depend on the order of the points (a model built on it is permutation-invariant), or a
    random one with ``random_start=True`` (drawn from ``generator``; for training).

    Args:
        pos: points, sorted by ``batch``.
        batch: cloud id of each point (``None``: one cloud).
        ratio: fraction of each cloud to keep (``ceil(ratio * N)``, at least 1), or
        num: points to keep per cloud (all of a smaller cloud).
        backend: ``"torch"`` (all clouds stepped together, a few ``[B, N]`` ops per pick;
            CPU and CUDA), ``"open3d"`` (its C++ loop, cloud by cloud; CPU only) or
            ``"auto"``: open3d on the CPU when importable (1.3-3.5x faster there, see
            ``pcattn bench ops``) and not under ``torch.compile``, torch otherwise. Both
            choose the same points.
        equal_clouds: ``B`` when the batch is ``B`` clouds of equal size: the torch path
            then takes its sizes from the shapes (:func:`sample_count` points per cloud)
            and reads nothing back, so ``torch.compile`` traces it in one graph (see
            :func:`~pcattn.ops.batching.equal_cloud_size`); ``None``: any sizes.

    Returns:
        Global indices into ``pos``, ascending (so grouped by cloud): the same on every
        backend; open3d does not report the selection order.

    Shape:
        pos: [M, 3], batch: [M] -> [S]
    """
    if (ratio is None) == (num is None):
        raise ValueError("give exactly one of ratio= or num=")
    if ratio is not None and (isinstance(ratio, (bool, str)) or not 0.0 < ratio <= 1.0):
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if backend not in ("auto", "torch", "open3d"):
        raise ValueError(f"unknown backend {backend!r}; choose 'auto', 'torch' or 'open3d'")
    if backend == "open3d" and pos.device.type != "cpu":
        raise ValueError("backend='open3d' runs on CPU tensors only; use backend='torch'")
    if num is not None:
        num = check_count(num, "num")
    check_points(pos, "pos")
    batch = check_batch(batch, pos.shape[0], pos.device)
    if pos.shape[0] == 0:  # no points, no clouds: nothing to pick
        return torch.zeros(0, dtype=torch.long, device=pos.device)
    if backend == "auto":
        backend = ("open3d" if pos.device.type == "cpu" and not torch.compiler.is_compiling()
                   and has_open3d() else "torch")
    if equal_clouds is not None:
        n = equal_cloud_size(batch, pos.shape[0], equal_clouds)
        if backend == "torch":
            return _fps_equal(pos.detach(), equal_clouds, n, sample_count(n, ratio, num),
                              random_start, generator)
    counts, ptr = counts_and_ptr(batch)
    if ratio is not None:
        take = torch.ceil(counts.double() * ratio).long().clamp(min=1)
    else:
        take = torch.full_like(counts, num)
    take = torch.minimum(take, counts)  # [B]
    dense, mask = unpack(pos.detach(), batch)  # [B, N, 3]
    b, n = mask.shape
    s_max = int(take.max())
    if random_start:
        start = (torch.rand(b, generator=generator).to(pos.device) * counts).long()
    else:
        start = _farthest_from_centroid(dense, mask, counts)
    if backend == "open3d":
        out = _fps_open3d(dense, counts, take, start, s_max)
    else:
        out = _fps_torch(dense, mask, start, s_max)  # [B, S_max]
    keep = torch.arange(s_max, device=pos.device)[None, :] < take[:, None]  # [B, S_max]
    return (out + ptr[:-1, None])[keep].sort().values  # [S], clouds stay grouped

def sample_count(n: int, ratio: float | None = None, num: int | None = None) -> int:
    """Points :func:`farthest_point_sample` keeps of a cloud of ``n``: ``ceil(ratio * n)``
    (at least 1), or ``num``; all of a smaller cloud."""
    take = max(math.ceil(n * ratio), 1) if ratio is not None else num
    return min(take, n)


def _fps_equal(pos: Tensor, b: int, n: int, take: int, random_start: bool,
               generator: torch.Generator | None) -> Tensor:
    """The torch path on ``b`` clouds of ``n`` points each, sizes from the shapes."""
    dense = pos.reshape(b, n, 3)  # [B, N, 3]
    mask = torch.ones(b, n, dtype=torch.bool, device=pos.device)
    counts = torch.full((b,), n, dtype=torch.long, device=pos.device)
    if random_start:
        start = (torch.rand(b, generator=generator).to(pos.device) * counts).long()
    else:
        start = _farthest_from_centroid(dense, mask, counts)
    out = _fps_torch(dense, mask, start, take)  # [B, take]
    offset = torch.arange(b, device=pos.device)[:, None] * n  # [B, 1]
    return (out + offset).reshape(-1).sort().values  # [B * take]


def _farthest_from_centroid(dense: Tensor, mask: Tensor, counts: Tensor) -> Tensor:
    """Per cloud, the index of the point farthest from its centroid: an order-free start."""
    weight = mask.unsqueeze(-1).to(dense.dtype)  # [B, N, 1]
    centroid = (dense * weight).sum(1, keepdim=True) / counts.clamp(min=1)[:, None, None]
    dist = ((dense - centroid) ** 2).sum(-1).masked_fill(~mask, -1.0)  # [B, N]
    return dist.argmax(dim=1)  # [B]


def _fps_torch(dense: Tensor, mask: Tensor, start: Tensor, s_max: int) -> Tensor:
    """All clouds stepped together; a handful of ``[B, N]`` ops per chosen point."""
    b, n = mask.shape
    x, y, z = dense.permute(2, 0, 1).contiguous()  # [B, N] each
    flat = dense.reshape(b * n, 3)  # [B * N, 3]
    offset = torch.arange(b, device=dense.device) * n  # [B]
    # squared distance to the chosen set; padded slots are -1 so never the farthest
    dist = torch.full((b, n), float("inf"), dtype=dense.dtype, device=dense.device)
    dist.masked_fill_(~mask, -1.0)
    d, t = torch.empty_like(dist), torch.empty_like(dist)
    far, chosen = start, []
    for _ in range(s_max):
        chosen.append(far)
        cx, cy, cz = flat.index_select(0, far + offset).unsqueeze(-1).unbind(1)  # [B, 1] each
        torch.sub(x, cx, out=d)
        d.mul_(d)
        torch.sub(y, cy, out=t)
        d.addcmul_(t, t)
        torch.sub(z, cz, out=t)
        d.addcmul_(t, t)
        torch.minimum(dist, d, out=dist)
        dist.scatter_(1, far[:, None], -0.5)  # never again: copies of a point come next
        far = dist.argmax(dim=1)  # [B]
    return torch.stack(chosen, dim=1)  # [B, S_max]


def _fps_open3d(dense: Tensor, counts: Tensor, take: Tensor, start: Tensor, s_max: int
                ) -> Tensor:
    """open3d's C++ loop, cloud by cloud (CPU); same selection rule and start point."""
    import open3d as o3d

    out = torch.zeros(dense.shape[0], s_max, dtype=torch.long)
    arr = dense.double().numpy()
    for c, (n, num, s0) in enumerate(zip(counts.tolist(), take.tolist(), start.tolist())):
        if n == 0:
            continue
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(arr[c, :n]))
        # tag each point with its index so the sampled subset can be mapped back
        cloud.colors = o3d.utility.Vector3dVector(
            np.stack([np.arange(n, dtype=np.float64), np.zeros(n), np.zeros(n)], axis=1))
        picked = np.asarray(cloud.farthest_point_down_sample(num, start_index=s0).colors)
        if len(picked) < num:  # open3d stops at the distinct points; copies come next
            one = dense[c:c + 1, :n]
            out[c, :num] = _fps_torch(one, torch.ones(1, n, dtype=torch.bool),
                                      start[c:c + 1], num)[0]
            continue
        out[c, :num] = torch.from_numpy(picked[:, 0].round().astype(np.int64))
    return out
