"""Pooling and unpooling on the grid of a serialization (Point Transformer V3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.nn.reset import reset_children
from pcattn.ops.serialize import Serialization, inverse_permutation
from pcattn.ops.serialize_neighbors import grid_neighbors


def coarsen(s: Serialization, *, neighbors: bool = False) -> tuple[Serialization, Tensor,
                                                                     Tensor]:
    """The serialization of the grid twice as coarse, and which coarse cell each point is in.

    Dropping the lowest bit of every axis drops the lowest 3 bits of a z-order or Hilbert
    code (both curves visit each aligned 2x2x2 block in one run), so the coarse codes are
    ``code >> 3`` and the coarse cells keep the orders; no sort by a new curve is needed.

    Returns:
        ``(coarse, cluster [M], first [V])``: ``coarse`` orders the ``V`` occupied coarse
        cells (numbered by their order along ``s.orders[0]``), ``cluster[i]`` is the cell of
        point ``i``, ``first[v]`` the first point of cell ``v`` (in that order).
    """
    if s.bits < 2:
        raise ValueError("this serialization has 1 bit per axis left and cannot be coarsened "
                         "again; serialize with more bits or pool fewer times")
    keys, cluster = torch.unique(s.code[0] >> 3, sorted=True, return_inverse=True)  # [V], [M]
    v, m = keys.numel(), cluster.numel()
    rank = torch.empty_like(cluster).scatter_(0, s.order[0], torch.arange(m, device=keys.device))
    first_rank = torch.full((v,), m, dtype=torch.long, device=keys.device).scatter_reduce(
        0, cluster, rank, "amin")  # [V]
    first = s.order[0][first_rank]  # [V]
    code = s.code[:, first] >> 3  # [O, V]
    order = torch.argsort(code, dim=1)  # [O, V]: one cell per code, no ties
    coords, batch, bits = s.coords[first] >> 1, s.batch[first], s.bits - 1
    cells = grid_neighbors(coords, batch, bits=bits) if neighbors else None
    coarse = Serialization(s.orders, code, order, inverse_permutation(order), coords, batch,
                           bits, s.grid_size * 2, cells)
    return coarse, cluster, first


class SerializedPooling(nn.Module):
    r"""PTv3's grid pooling: a Linear per point, then the max over each coarse cell.

    .. math::
        x'_v = \operatorname{GELU}\big(\operatorname{LayerNorm}(
            \max_{i \in v} W x_i)\big), \qquad p'_v = \operatorname{mean}_{i \in v} p_i

    over the cells ``v`` of the grid twice as coarse (:func:`coarsen`).

    Shape:
        x: [M, C_in], pos: [M, 3], serialization of M points
        -> x [V, C], pos [V, 3], coarse serialization, cluster [M], first [V]
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels)
        self.norm = nn.LayerNorm(out_channels)

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, pos: Tensor, serialization: Serialization, *,
                neighbors: bool = False) -> tuple[Tensor, Tensor, Serialization, Tensor, Tensor]:
        coarse, cluster, first = coarsen(serialization, neighbors=neighbors)
        v = first.numel()
        h = self.lin(x)  # [M, C]
        index = cluster[:, None].expand_as(h)
        pooled = h.new_full((v, h.shape[1]), -torch.inf).scatter_reduce(
            0, index, h, "amax")  # [V, C]
        count = torch.bincount(cluster, minlength=v).to(pos.dtype)[:, None]  # [V, 1]
        centre = pos.new_zeros(v, 3).index_add_(0, cluster, pos) / count  # [V, 3]
        out = nn.functional.gelu(self.norm(pooled))
        return out, centre, coarse, cluster, first


class SerializedUnpooling(nn.Module):
    r"""PTv3's unpooling: each point takes its coarse cell's feature, added to its own.

    .. math::
        y_i = \phi(W_s x^{skip}_i) + \phi(W x'_{v(i)}), \qquad
        \phi = \operatorname{GELU} \circ \operatorname{LayerNorm}

    Shape:
        x: [V, C_in], x_skip: [M, C], cluster: [M] -> [M, C]
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels)
        self.norm = nn.LayerNorm(out_channels)
        self.lin_skip = nn.Linear(out_channels, out_channels)
        self.norm_skip = nn.LayerNorm(out_channels)

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, x_skip: Tensor, cluster: Tensor) -> Tensor:
        up = nn.functional.gelu(self.norm(self.lin(x)))[cluster]  # [M, C]
        return nn.functional.gelu(self.norm_skip(self.lin_skip(x_skip))) + up
