"""What the global attention blocks with one query-key-value map share: their widths,
projections, positional encoding, ``reset_parameters`` and the preparation of ``forward``."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from pcattn.nn.global_inputs import check_heads, global_inputs
from pcattn.nn.reset import reset_children


class GlobalAttentionBase(nn.Module):
    """Checked ``in_channels``, ``out_channels`` and ``heads``; ``lin_qkv`` (``C_in -> 3C``,
    queries, keys and values in one map, as ``torch.nn.MultiheadAttention``'s
    ``in_proj``) and ``lin_out`` (``C -> C``, its ``out_proj``); ``pos_encoding``.

    A block built on it defines ``forward``; ``_inputs``, ``_project`` and ``_output`` are
    its first and last steps.

    Shape:
        ``_project``: x [M, C_in] -> q, k, v [M, H, D] each (``D = C / H``);
        ``_output``: [M, H, D] -> [M, C]
    """

    def __init__(self, in_channels: int, out_channels: int | None, *, heads: int,
                 bias: bool, pos_encoding: Callable | None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels, out_channels, heads = check_heads(name, in_channels, out_channels, heads)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.lin_qkv = nn.Linear(in_channels, 3 * out_channels, bias=bias)
        self.lin_out = nn.Linear(out_channels, out_channels, bias=bias)
        self.pos_encoding = pos_encoding

    def reset_parameters(self) -> None:
        """Default inits of the projections (and ``pos_encoding``)."""
        reset_children(self)

    def _inputs(self, x: Tensor, batch: Tensor | None, pos: Tensor | None, *,
               pos_needed_for: str | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (plus ``pos_encoding(pos)``) and ``batch``, checked (``pos_needed_for``:
        see :func:`~pcattn.nn.global_inputs.global_inputs`)."""
        return global_inputs(type(self).__name__, x, batch, pos, self.in_channels,
                             self.pos_encoding, pos_needed_for=pos_needed_for)

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of every node, split into heads."""
        m, h, c = x.shape[0], self.heads, self.out_channels
        q, k, v = self.lin_qkv(x).view(m, 3, h, c // h).unbind(1)  # [M, H, D] each
        return q, k, v

    def _output(self, out: Tensor) -> Tensor:
        """The heads' outputs concatenated and mapped by ``lin_out``."""
        return self.lin_out(out.reshape(out.shape[0], self.out_channels))  # [M, C]
