"""Gather node features into neighbourhoods."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.checks import check_index_range


def gather(x: Tensor, idx: Tensor) -> Tensor:
    """Gather rows of ``x`` by ``idx``; ``-1`` entries give zeros and pass no gradient.

    A zero row is appended and ``-1`` picks it, so no mask is applied afterwards. Any other
    entry outside ``[0, M)`` is an error naming it.

    Shape:
        x: [M, *], idx: [M_q, K] -> [M_q, K, *]
    """
    m = x.shape[0]
    check_index_range(idx, m)
    x_pad = torch.cat([x, x.new_zeros((1,) + tuple(x.shape[1:]))], dim=0)  # [M + 1, *]
    flat = torch.where(idx < 0, m, idx).reshape(-1)  # [M_q * K]
    return x_pad.index_select(0, flat).view(tuple(idx.shape) + tuple(x.shape[1:]))
