"""The residual blocks the models stack: an attention layer with its norms, linear maps and
skip connection. Point Transformer's block is the frame of the local ones
(:class:`LocalResidualBlock`); PTv3's is a transformer block; the graph attention block
keeps GAT's ELU."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_features, check_int, check_points, local_neighbors
from pcattn.nn.global_inputs import check_heads
from pcattn.nn.graph_attention import GraphAttention
from pcattn.nn.grouped_vector_attention import GroupedVectorAttention
from pcattn.nn.nadaraya_watson import NadarayaWatsonLayer
from pcattn.nn.point_transformer import PointTransformerLayer
from pcattn.nn.reset import reset_children
from pcattn.nn.serialized_attention import SerializedAttention
from pcattn.ops.serialize import Serialization


class LocalResidualBlock(nn.Module):
    """``x + Linear(ReLU(LayerNorm(attn(lin_in(LayerNorm(x))))))``: the block of Zhao et al.
    (Fig. 4: a linear map, the attention, a linear map back and a residual), pre-norm, around
    the local attention layer ``make_attention(C)``; ``lin_in`` is a ``Linear``, or the
    identity where the attention projects its own input (PTv2).

    Shape:
        x: [M, C], pos: [M, 3], idx: [M, K] or edge_index: [2, E] (as the layer's) -> [M, C];
        with ``return_attention=True`` also the layer's ``local`` :class:`AttentionMap`.
    """

    def __init__(self, in_channels: int, make_attention: Callable[[int], nn.Module], *,
                 lin_in: bool = True) -> None:
        super().__init__()
        c = check_int(type(self).__name__, "in_channels", in_channels)
        self.in_channels = self.out_channels = c
        self.norm1 = nn.LayerNorm(c)
        self.lin_in = nn.Linear(c, c) if lin_in else nn.Identity()
        self.attn = make_attention(c)  # reads add_self_loops, as the layers do
        self.norm2 = nn.LayerNorm(c)
        self.lin_out = nn.Linear(c, c)

    def reset_parameters(self) -> None:
        """Default inits of every sub-module."""
        reset_children(self)

    def forward(
        self, x: Tensor, pos: Tensor, idx: Tensor | None = None, *,
        edge_index: Tensor | None = None, return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        idx = local_neighbors(type(self).__name__, x, pos, idx, edge_index, self.in_channels,
                              add_self_loops=self.attn.add_self_loops)
        h = self.attn(self.lin_in(self.norm1(x)), pos, idx, return_attention=return_attention)
        h, amap = h if return_attention else (h, None)  # [M, C]
        out = x + self.lin_out(torch.relu(self.norm2(h)))  # [M, C]
        return (out, amap) if return_attention else out


class PointTransformerBlock(LocalResidualBlock):
    """Residual Point Transformer block (Zhao et al., ICCV 2021, Fig. 4):
    ``x + Linear(ReLU(LN(PT(Linear(LN(x))))))``, :class:`~pcattn.nn.PointTransformerLayer`
    its attention.

    Args:
        in_channels: ``C`` (input and output).
        **layer_kwargs: keywords of the layer (``pos_nn``, ``attn_nn``, ``chunk_size``,
            ``recompute_above``, ``add_self_loops``).

    Shape:
        x: [M, C], pos: [M, 3], idx: [M, K] or edge_index: [2, E] (as the layer's) -> [M, C];
        with ``return_attention=True`` also the layer's ``local`` :class:`AttentionMap`
        (weights [M, K, C]).
    """

    def __init__(self, in_channels: int, **layer_kwargs) -> None:
        super().__init__(in_channels, lambda c: PointTransformerLayer(c, c, **layer_kwargs))


class PTv2Block(LocalResidualBlock):
    """PTv2's block (Wu et al., NeurIPS 2022; ``fc1, attn, norm, act, fc3`` plus a residual)
    with the norm moved before the attention: ``x + Linear(ReLU(LN(GVA(LN(x)))))``,
    :class:`~pcattn.nn.GroupedVectorAttention` its attention (which projects its own input:
    no ``lin_in``).

    Args:
        in_channels: ``C`` (input and output), divisible by ``heads``.
        heads: ``G``, groups of the attention.
        pos_multiplier: PTv2's position-encoding multiplier.
        **layer_kwargs: further keywords of the layer (``chunk_size``, ``recompute_above``,
            ``add_self_loops``...).

    Shape:
        x: [M, C], pos: [M, 3], idx: [M, K] or edge_index: [2, E] (as the layer's) -> [M, C];
        with ``return_attention=True`` also the layer's ``local`` :class:`AttentionMap`
        (weights [M, K, G]).
    """

    def __init__(self, in_channels: int, *, heads: int = 8, pos_multiplier: bool = True,
                 **layer_kwargs) -> None:
        c, heads = _width_and_heads(type(self).__name__, in_channels, heads)
        super().__init__(c, lambda c: GroupedVectorAttention(
            c, c, heads=heads, pos_multiplier=pos_multiplier, **layer_kwargs), lin_in=False)


class NadarayaWatsonBlock(LocalResidualBlock):
    """Point Transformer's block with :class:`~pcattn.nn.NadarayaWatsonLayer` as its
    attention (``x + Linear(ReLU(LN(NW(Linear(LN(x))))))``): the block of the
    Nadaraya-Watson baseline, whose only attention parameter is the bandwidth.

    Args:
        in_channels: ``C`` (input and output).
        sigma, learn_sigma, add_self_loops: the layer's.

    Shape:
        x: [M, C], pos: [M, 3] (in units of the neighbourhood scale), idx: [M, K] or
        edge_index: [2, E] -> [M, C]; with ``return_attention=True`` also the layer's
        ``local`` :class:`AttentionMap` (weights [M, K, 1]).
    """

    def __init__(self, in_channels: int, *, sigma: float = 1.0, learn_sigma: bool = False,
                 add_self_loops: bool = True) -> None:
        super().__init__(in_channels, lambda c: NadarayaWatsonLayer(
            sigma=sigma, learn_sigma=learn_sigma, add_self_loops=add_self_loops))


class PTv3Block(nn.Module):
    """Pre-norm transformer block around :class:`~pcattn.nn.SerializedAttention` (Point
    Transformer V3): ``x + Attn(LN(x))``, then ``x + MLP(LN(x))`` (``C -> r C -> C``, GELU).
    The conditional positional encoding sits inside the attention, on its input.

    Args:
        in_channels: ``C`` (input and output), divisible by ``heads``.
        heads: ``H``.
        mlp_ratio: ``r``.
        **attn_kwargs: further keywords of the attention (``patch_size``, ``order``,
            ``grid_size``, ``pos_encoding``, ``k``).

    Shape:
        x: [M, C], pos: [M, 3], batch: [M] (``None``: one cloud) -> [M, C];
        ``serialization=`` and ``order=`` as the attention's; with ``return_attention=True``
        also its ``patch`` :class:`AttentionMap`.
    """

    def __init__(self, in_channels: int, *, heads: int = 4, mlp_ratio: int = 4,
                 **attn_kwargs) -> None:
        super().__init__()
        name = type(self).__name__
        c, heads = _width_and_heads(name, in_channels, heads)
        r = check_int(name, "mlp_ratio", mlp_ratio)
        self.in_channels = self.out_channels = c
        self.norm1 = nn.LayerNorm(c)
        self.attn = SerializedAttention(c, c, heads=heads, **attn_kwargs)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, r * c), nn.GELU(), nn.Linear(r * c, c))

    def reset_parameters(self) -> None:
        """Default inits of every sub-module."""
        reset_children(self)

    def forward(
        self, x: Tensor, pos: Tensor, batch: Tensor | None = None, *,
        serialization: Serialization | None = None, order: str | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        check_points(type(self).__name__, x, pos, batch, self.in_channels)
        h = self.attn(self.norm1(x), pos, batch, serialization=serialization, order=order,
                      return_attention=return_attention)
        h, amap = h if return_attention else (h, None)  # [M, C], patch map
        x = x + h
        x = x + self.mlp(self.norm2(x))  # [M, C]
        return (x, amap) if return_attention else x


class GraphAttentionBlock(nn.Module):
    """Pre-norm residual graph attention: ``skip(x) + ELU(GAT(LN(x)))``, the ELU of the GAT
    paper, :class:`~pcattn.nn.GraphAttention` (GATv2) the attention and ``skip`` a linear
    map where the width changes.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C``, divisible by ``heads``.
        heads: ``H``.
        edge_dim: size of ``edge_attr`` (``None``: no edge features).
        dropout: dropout on the attention weights (training only).

    Shape:
        x: [M, C_in], edge_index: [2, E], edge_attr: [E, edge_dim] or None -> [M, C];
        with ``return_attention=True`` also the layer's ``graph`` :class:`AttentionMap`
        (weights [E, H]).
    """

    def __init__(self, in_channels: int, out_channels: int, *, heads: int = 4,
                 edge_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        name = type(self).__name__
        c_in, c, heads = check_heads(name, in_channels, out_channels, heads)
        edge_dim = check_int(name, "edge_dim", edge_dim, optional=True)
        self.in_channels, self.out_channels = c_in, c
        self.norm = nn.LayerNorm(c_in)
        self.attn = GraphAttention(c_in, c, heads=heads, edge_dim=edge_dim, dropout=dropout)
        self.skip = nn.Identity() if c_in == c else nn.Linear(c_in, c, bias=False)

    def reset_parameters(self) -> None:
        """Default inits of the norm and skip map; the layer's Glorot init."""
        reset_children(self)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, *,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        check_features(type(self).__name__, x, self.in_channels)
        h = self.attn(self.norm(x), edge_index, edge_attr=edge_attr,
                      return_attention=return_attention)
        h, amap = h if return_attention else (h, None)  # [M, C], graph map [E, H]
        out = self.skip(x) + F.elu(h)  # [M, C]
        return (out, amap) if return_attention else out


def _width_and_heads(block: str, in_channels, heads) -> tuple[int, int]:
    """``in_channels`` and ``heads`` checked: integers >= 1, the first divisible by the
    second."""
    c, heads = check_int(block, "in_channels", in_channels), check_int(block, "heads", heads)
    if c % heads:
        raise ValueError(f"{block}: in_channels={c} is not divisible by heads={heads}")
    return c, heads
