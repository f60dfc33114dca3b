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
    check_index_range(idx, x.shape[0])
    return gather_padded(pad_zero_row(x), idx)


def pad_zero_row(x: Tensor) -> Tensor:
    """``x`` with a zero row appended: the table :func:`gather_padded` reads. Make it once
    when one table is gathered in several chunks of rows (one copy instead of one each).

    Shape:
        x: [M, *] -> [M + 1, *]
    """
    return torch.cat([x, x.new_zeros((1,) + tuple(x.shape[1:]))], dim=0)


def gather_padded(x_pad: Tensor, idx: Tensor) -> Tensor:
    """:func:`gather` from a table made by :func:`pad_zero_row`. ``idx`` is not checked
    here: its entries must be ``-1`` or in ``[0, M)`` (check them once, e.g. with
    :func:`pcattn.ops.batching.check_neighbors`).

    Shape:
        x_pad: [M + 1, *], idx: [M_q, K] -> [M_q, K, *]
    """
    flat = padded_rows(idx, x_pad.shape[0])  # [M_q * K]
    return x_pad.index_select(0, flat).view(tuple(idx.shape) + tuple(x_pad.shape[1:]))


def padded_rows(idx: Tensor, num_rows: int) -> Tensor:
    """The rows of a :func:`pad_zero_row` table of ``num_rows`` rows (the zero row
    included) that ``idx`` reads, flat: ``-1`` picks the zero row.
    ``x_pad.index_select(0, padded_rows(idx, len(x_pad)))`` is :func:`gather_padded`'s
    result as ``[M_q * K, *]``, a tensor of its own (not a view), so it can be updated in
    place without autograd copying it back into a base.

    Shape:
        idx: [M_q, K] -> [M_q * K]
    """
    return torch.where(idx < 0, num_rows - 1, idx).reshape(-1)
