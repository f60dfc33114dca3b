"""What the global attention blocks check and prepare before they attend: their widths and
heads at construction, and ``x``, ``batch`` and ``pos`` in ``forward``."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from pcattn.nn.checks import check_batch_rows, check_features, check_int, check_positions
from pcattn.nn.positional_encoding import apply_pos_encoding
from pcattn.ops.batching import check_batch


def check_heads(block: str, in_channels, out_channels, heads) -> tuple[int, int, int]:
    """``(in_channels, out_channels, heads)`` checked: integers >= 1, ``out_channels``
    (default ``in_channels``) divisible by ``heads``."""
    in_channels = check_int(block, "in_channels", in_channels)
    out_channels = check_int(block, "out_channels", out_channels, optional=True)
    heads = check_int(block, "heads", heads)
    out_channels = out_channels or in_channels
    if out_channels % heads:
        raise ValueError(f"{block}: out_channels={out_channels} is not divisible by "
                         f"heads={heads}")
    return in_channels, out_channels, heads


def global_inputs(block: str, x: Tensor, batch: Tensor | None, pos: Tensor | None,
                  in_channels: int, pos_encoding: Callable | None, *,
                  pos_needed_for: str | None = None) -> tuple[Tensor, Tensor]:
    """``x`` (with ``pos_encoding(pos)`` added when the block has one) and ``batch`` (zeros
    for ``None``), checked against each other; ``pos_needed_for`` says why a block that
    reads positions itself needs ``pos``.

    Shape:
        x: [M, C_in], batch: [M] or None, pos: [M, 3] or None -> x [M, C_in], batch [M]
    """
    m = check_features(block, x, in_channels)
    check_batch_rows(block, batch, m)
    if pos_needed_for is not None:
        if pos is None:
            raise ValueError(f"{block} needs pos=[M, 3]: {pos_needed_for}; call it as "
                             "block(x, batch, pos=pos)")
        check_positions(block, pos, m, like=x)
    batch = check_batch(batch, m, x.device)
    return apply_pos_encoding(x, pos, pos_encoding, block), batch  # [M, C_in], [M]
