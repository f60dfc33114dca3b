"""Conditional positional encodings for serialized attention, in pure torch.

Attention inside a patch of a space-filling order sees no geometry of its own; Point
Transformer V3 (Wu et al., CVPR 2024) adds a conditional positional encoding (CPE, Chu et
al. 2021) before each attention: ``x + LayerNorm(W SubMConv3d(x))``, and loses 11 mIoU
without it. Two pure-torch forms, both ``(x, pos, serialization) -> [M, C]``:

- :class:`GridConvEncoding`: the exact submanifold 3x3x3 convolution on the occupied grid
  cells (cells looked up by ``searchsorted`` on sorted codes, no spconv);
- :class:`KnnConvEncoding`: a depthwise point convolution over the ``k`` nearest
  neighbours, its kernel an MLP of the offset in cells.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.gather import gather_padded, pad_zero_row
from pcattn.ops.knn import knn
from pcattn.ops.serialize import Serialization
from pcattn.ops.serialize_neighbors import grid_neighbors


class GridConvEncoding(nn.Module):
    r"""PTv3's CPE: a submanifold 3x3x3 convolution on grid cells, a Linear, a LayerNorm.

    .. math::
        \bar x_v = \operatorname{mean}_{i \in v} x_i, \qquad
        y_v = b + \sum_{o \in \{-1,0,1\}^3,\ v + o \text{ occupied}} W_o^\top \bar x_{v+o},
        \qquad \mathrm{cpe}(x)_i = \operatorname{LayerNorm}(W y_{v(i)})

    over the occupied cells ``v`` of each cloud (``v(i)`` the cell of point ``i``); with one
    point per cell (PTv3 grid-samples its input) this is spconv's ``SubMConv3d``. The sum
    runs offset by offset (``(x W_o)`` gathered), so memory stays ``O(V C)``.

    Shape:
        x: [M, C], serialization with ``cells`` (or ``coords``) -> [M, C]
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(27, channels, channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.lin = nn.Linear(channels, channels)
        self.norm = nn.LayerNorm(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform over the 27 C inputs of each output, as a Conv3d."""
        bound = 1 / math.sqrt(27 * self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.lin.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor, pos: Tensor, serialization: Serialization) -> Tensor:
        s = serialization
        cell, neighbors = s.cells if s.cells is not None else grid_neighbors(
            s.coords, s.batch, bits=s.bits)  # [M], [V, 27]
        v = neighbors.shape[0]
        count = torch.bincount(cell, minlength=v).clamp(min=1).to(x.dtype)  # [V]
        mean = x.new_zeros(v, x.shape[1]).index_add_(0, cell, x) / count[:, None]  # [V, C]
        mean = pad_zero_row(mean)  # [V + 1, C]; row V stands for an empty cell
        y = self.bias.expand(v, -1)
        for o in range(27):  # (x W_o) then gather: nothing [V, 27, C] is kept
            y = y + gather_padded(mean @ self.weight[o], neighbors[:, o])  # [V, C]
        return self.norm(self.lin(y[cell]))  # [M, C]


class KnnConvEncoding(nn.Module):
    r"""A depthwise point convolution over the ``k`` nearest neighbours as the CPE.

    .. math::
        y_i = \frac{1}{|N(i)|} \sum_{j \in N(i)} \theta\!\left(\frac{p_j - p_i}{g}\right)
            \odot x_j, \qquad \mathrm{cpe}(x)_i = \operatorname{LayerNorm}(W y_i)

    with ``theta`` an MLP ``3 -> C -> C`` giving one weight per channel and ``g`` the
    cloud's grid size (offsets in cells, so the kernel does not depend on units).

    Shape:
        x: [M, C], pos: [M, 3], serialization -> [M, C]
    """

    def __init__(self, channels: int, *, k: int = 16) -> None:
        super().__init__()
        self.k = k
        self.kernel = mlp([3, channels, channels])
        self.lin = nn.Linear(channels, channels)
        self.norm = nn.LayerNorm(channels)

    def reset_parameters(self) -> None:
        """Default inits of the kernel MLP, the Linear and the LayerNorm."""
        reset_children(self)

    def forward(self, x: Tensor, pos: Tensor, serialization: Serialization) -> Tensor:
        s = serialization
        idx = knn(pos, self.k, s.batch)  # [M, K]
        valid = (idx >= 0)[..., None]  # [M, K, 1]
        scale = (1 / s.grid_size).to(pos.dtype)[s.batch]  # [M]
        rel = (gather_padded(pad_zero_row(pos), idx) - pos[:, None]) * valid  # [M, K, 3]
        weight = self.kernel(rel * scale[:, None, None])  # [M, K, C]
        y = (weight * gather_padded(pad_zero_row(x), idx) * valid).sum(1)  # [M, C]
        return self.norm(self.lin(y / valid.sum(1).clamp(min=1)))
