"""The occupied cells of a grid and their 27 neighbours, found on sorted codes.

What a submanifold sparse convolution (Graham et al., CVPR 2018; spconv's ``SubMConv3d``)
reads, in pure torch: the occupied cells of each cloud are the unique Morton codes of its
points; the cell at offset ``(dx, dy, dz)`` in ``{-1, 0, 1}^3`` is looked up by
``searchsorted`` on those sorted codes. No hash table, no CUDA kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.batching import check_batch
from pcattn.ops.serialize import encode

# the 27 offsets, dx slowest; row 13 is (0, 0, 0)
OFFSETS = torch.stack(torch.meshgrid(*[torch.arange(-1, 2)] * 3, indexing="ij"),
                      -1).reshape(27, 3)


def grid_neighbors(coords: Tensor, batch: Tensor | None = None, *, bits: int
                   ) -> tuple[Tensor, Tensor]:
    """The occupied cells, each point's cell, and each cell's 27 neighbouring cells.

    Args:
        coords: grid coordinates of the points, in ``[0, 2**bits)`` (:func:`grid_coords`).
        batch: cloud id of each point; cells of two clouds are never neighbours.
        bits: bits per axis of the grid.

    Returns:
        ``(cell [M], neighbors [V, 27])``: ``cell`` numbers the ``V`` occupied cells of the
        batch (in Morton order, clouds in id order); ``neighbors[v, o]`` is the cell at
        offset ``OFFSETS[o]`` from cell ``v``, ``-1`` where that cell is empty or outside
        the grid. ``neighbors[:, 13]`` is the cell itself.

    Shape:
        coords: [M, 3], batch: [M] -> ([M], [V, 27])
    """
    batch = check_batch(batch, coords.shape[0], coords.device)
    if coords.shape[0] == 0:
        return batch.new_zeros(0), batch.new_zeros(0, 27)
    code = encode(coords, batch, order="z", bits=bits)  # [M]
    keys, cell = torch.unique(code, sorted=True, return_inverse=True)  # [V], [M]
    first = torch.full_like(keys, coords.shape[0]).scatter_reduce(
        0, cell, torch.arange(coords.shape[0], device=coords.device), "amin")  # [V]
    cell_coords, cell_batch = coords[first].long(), batch[first]  # [V, 3], [V]
    near = cell_coords[:, None, :] + OFFSETS.to(coords.device)  # [V, 27, 3]
    inside = ((near >= 0) & (near < 1 << bits)).all(-1)  # [V, 27]
    near = near.clamp(0, (1 << bits) - 1).reshape(-1, 3)  # [V * 27, 3]
    want = encode(near, cell_batch.repeat_interleave(27), order="z",
                  bits=bits).view(-1, 27)  # [V, 27]
    at = torch.searchsorted(keys, want).clamp_(max=keys.numel() - 1)  # [V, 27]
    found = inside & (keys[at] == want)
    return cell, torch.where(found, at, torch.full_like(at, -1))
