"""Any global attention family in the offset form of PCT's layers (``model.attention``)."""

from __future__ import annotations

from torch import Tensor, nn

import pcattn.nn as pnn
from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.reset import reset_children


def global_attention(family: str, channels: int, *, heads: int = 4) -> nn.Module:
    """The ``C -> C`` block of one family (see ``PCTConfig.attention``), at the sizes
    ``pcattn bench attention`` measures."""
    blocks = {
        "full": lambda: pnn.GlobalSelfAttention(channels, heads=heads),
        "linear": lambda: pnn.LinearAttention(channels, heads=heads),
        "induced": lambda: pnn.InducedSetAttention(channels, heads=heads, num_inducing=32),
        "anchor": lambda: pnn.AnchorAttention(channels, heads=heads, num_anchors=128),
        "cluster": lambda: pnn.ClusterAttention(channels, heads=heads, num_clusters=8),
        "sinkhorn": lambda: pnn.SinkhornAttention(channels, heads=heads, block_size=32),
    }
    if family not in blocks:
        raise ValueError(f"unknown attention family {family!r}; valid: {sorted(blocks)}")
    return blocks[family]()


class OffsetStage(nn.Module):
    r"""PCT's offset form around a global attention block ``A``:
    :math:`y = x + \mathrm{LBR}(x - A(x))`, LBR being ``Linear -> LayerNorm -> ReLU``.

    Shape:
        x: [M, C], batch: [M], pos: [M, 3] -> [M, C] (and ``A``'s :class:`AttentionMap`)
    """

    def __init__(self, attention: nn.Module, channels: int) -> None:
        super().__init__()
        self.attention = attention
        self.lbr = nn.Sequential(nn.Linear(channels, channels), nn.LayerNorm(channels),
                                 nn.ReLU())

    def reset_parameters(self) -> None:
        """Each sub-block back to its own init."""
        reset_children(self)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        if not return_attention:
            return x + self.lbr(x - self.attention(x, batch, pos=pos))  # [M, C]
        a, amap = self.attention(x, batch, pos=pos, return_attention=True)  # [M, C]
        return x + self.lbr(x - a), amap
