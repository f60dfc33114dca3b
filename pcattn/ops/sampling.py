"""Farthest point sampling, batched over the clouds of a packed batch."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.batching import check_batch, counts_and_ptr, unpack


def farthest_point_sample(
    pos: Tensor, batch: Tensor | None = None, *, ratio: float | None = None,
    num: int | None = None, random_start: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Farthest point sampling (PointNet++), per cloud, all clouds stepped together.

    Each chosen point is the one farthest from those chosen before it in its cloud. The
    first point is the cloud's first node, or a random one with ``random_start=True``
    (drawn from ``generator``), so the default is deterministic.

    Args:
        pos: points, sorted by ``batch``.
        batch: cloud id of each point (``None``: one cloud).
        ratio: fraction of each cloud to keep (``ceil(ratio * N)``, at least 1), or
        num: points to keep per cloud (all of a smaller cloud).

    Returns:
        Global indices into ``pos``, grouped by cloud, in selection order.

    Shape:
        pos: [M, 3], batch: [M] -> [S]
    """
    if (ratio is None) == (num is None):
        raise ValueError("give exactly one of ratio= or num=")
    if ratio is not None and not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if num is not None and num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    batch = check_batch(batch, pos.shape[0], pos.device)
    counts, ptr = counts_and_ptr(batch)
    if ratio is not None:
        take = torch.ceil(counts.double() * ratio).long().clamp(min=1)
    else:
        take = torch.full_like(counts, num)
    take = torch.minimum(take, counts)  # [B]
    dense, mask = unpack(pos.detach(), batch)  # [B, N, 3]
    b, n = mask.shape
    s_max = int(take.max()) if b else 0
    xyz = dense.permute(2, 0, 1).contiguous()  # [3, B, N]
    if random_start:
        start = (torch.rand(b, generator=generator).to(pos.device) * counts).long()
    else:
        start = torch.zeros(b, dtype=torch.long, device=pos.device)
    # dist to the chosen set; padded slots are -1 so they are never the farthest
    dist = torch.full((b, n), float("inf"), dtype=dense.dtype, device=pos.device)
    dist.masked_fill_(~mask, -1.0)
    out = torch.empty(b, s_max, dtype=torch.long, device=pos.device)
    rows = torch.arange(b, device=pos.device)
    far = start
    d = torch.empty_like(dist)
    t = torch.empty_like(dist)
    for s in range(s_max):
        out[:, s] = far
        centre = xyz[:, rows, far]  # [3, B]
        torch.sub(xyz[0], centre[0, :, None], out=d)
        d.mul_(d)
        for a in (1, 2):
            torch.sub(xyz[a], centre[a, :, None], out=t)
            d.addcmul_(t, t)
        torch.minimum(dist, d, out=dist)
        far = dist.argmax(dim=1)  # [B]
    keep = torch.arange(s_max, device=pos.device)[None, :] < take[:, None]  # [B, S_max]
    return (out + ptr[:-1, None])[keep]  # [S]

