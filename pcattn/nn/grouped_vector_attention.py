"""Grouped vector attention over kNN neighbourhoods (Point Transformer V2, Wu et al. 2022)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int, local_neighbors
from pcattn.nn.chunking import RECOMPUTE_ABOVE, check_chunking, chunked_rows
from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.gather import gather_padded
from pcattn.ops.softmax import masked_softmax


class GroupedVectorAttention(nn.Module):
    r"""Vector attention whose weights are shared within groups of channels.

    From "Point Transformer V2: Grouped Vector Attention and Partition-based Pooling"
    (Wu, Lao, Jiang, Liu, Zhao, NeurIPS 2022). The ``C`` channels are split into ``G``
    groups of ``D = C / G``; one attention weight per neighbour and group is computed by
    the weight encoding ``omega`` and shared by the ``D`` channels of the group:

    .. math::
        r_{ij} = \big(\psi(x_j) - \varphi(x_i)\big) \odot \mu(p_j - p_i) + \delta_{ij},
        \qquad \delta_{ij} = \theta(p_j - p_i)

        w_{ij} = \operatorname{softmax}_{j \in N(i)}\big(\omega(r_{ij})\big) \in \mathbb{R}^G,
        \qquad y_i^{(g)} = \sum_{j \in N(i)} w_{ij}^{(g)}
                           \big(\alpha(x_j) + \delta_{ij}\big)^{(g)}

    with ``phi, psi`` the query and key maps (``Linear, LayerNorm, ReLU`` as in PTv2's
    ``linear_q``/``linear_k``, LayerNorm instead of BatchNorm), ``alpha`` the value map,
    ``theta`` the positional bias (``pos_nn``) and ``mu`` the optional positional
    multiplier (``pos_multiplier=True``, PTv2's ``pe_multiplier``; otherwise ``mu = 1``).
    ``G = C`` gives Point Transformer's per-channel vector attention, ``G = 1`` a scalar
    attention with one head. Padding (``-1`` in ``idx``) gets exactly zero weight: the
    softmax is taken over valid neighbours only (PTv2 multiplies by the mask after the
    softmax, so its weights do not sum to one on padded rows).

    Args:
        in_channels: input feature size ``C_in``.
        out_channels: output feature size ``C``, divisible by ``heads``.
        heads: number of weight groups ``G`` (PTv2's ``groups``; the heads of the map).
        pos_nn: ``[*, 3] -> [*, C]`` positional bias ``theta``; default
            ``Linear(3, C), LayerNorm, ReLU, Linear(C, C)``.
        attn_nn: ``[*, C] -> [*, G]`` weight encoding ``omega``; default
            ``Linear(C, G), LayerNorm, ReLU, Linear(G, G)``.
        pos_multiplier: also learn the multiplier ``mu`` (same architecture as ``pos_nn``).
        bias: bias in the query, key and value linear maps.
        chunk_size: elements of ``[R, K, C]`` per chunk of rows; ``"auto"``: cache-sized
            chunks on the CPU, one chunk elsewhere; ``None``: one chunk, all kept
            (:func:`pcattn.nn.chunking.chunked_rows`).
        recompute_above: memory budget, in elements of ``[M, K, C]``: above it each chunk
            is recomputed in backward; ``None``: never recompute.
        add_self_loops: with ``edge_index=``, make each node its own neighbour exactly
            once (as PyG's convs do by default); ``idx`` is taken as given.

    Shape:
        x: [M, C_in], pos: [M, 3], idx: [M, K] (``-1`` padded) or edge_index: [2, E]
        (PyG's, converted by :func:`pcattn.ops.edge_index_to_neighbors`) -> [M, C];
        with ``return_attention=True`` also a ``local`` :class:`AttentionMap`: weights
        [M, K, G] (zero at padding) on ``idx``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, heads: int = 8,
        pos_nn: Callable | None = None, attn_nn: Callable | None = None,
        pos_multiplier: bool = False, bias: bool = True, chunk_size: int | str | None = "auto",
        recompute_above: int | None = RECOMPUTE_ABOVE, add_self_loops: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        heads = check_int(name, "heads", heads)
        self.chunk_size, self.recompute_above = check_chunking(
            name, chunk_size, recompute_above)
        if out_channels % heads != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by heads "
                             f"({heads})")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.add_self_loops = add_self_loops
        c = out_channels
        self.lin_q = nn.Sequential(nn.Linear(in_channels, c, bias=bias), nn.LayerNorm(c),
                                   nn.ReLU(inplace=True))
        self.lin_k = nn.Sequential(nn.Linear(in_channels, c, bias=bias), nn.LayerNorm(c),
                                   nn.ReLU(inplace=True))
        self.lin_v = nn.Linear(in_channels, c, bias=bias)
        self.pos_nn = pos_nn if pos_nn is not None else mlp([3, c, c])
        self.pos_mul_nn = mlp([3, c, c]) if pos_multiplier else None
        self.attn_nn = attn_nn if attn_nn is not None else mlp([c, heads, heads])

    def reset_parameters(self) -> None:
        """Default inits of the linear maps and of the injected sub-networks."""
        reset_children(self)

    def forward(
        self, x: Tensor, pos: Tensor, idx: Tensor | None = None, *,
        edge_index: Tensor | None = None, return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        idx = local_neighbors(type(self).__name__, x, pos, idx, edge_index, self.in_channels,
                              add_self_loops=self.add_self_loops)
        c = self.out_channels
        out, weight = chunked_rows(
            self._attend, (self.lin_q(x), pos, idx), (),
            tables=(self.lin_k(x), self.lin_v(x), pos), index=2, chunk_size=self.chunk_size,
            row_elems=idx.shape[1] * c, keep=(True, return_attention),
            recompute_above=self.recompute_above)
        if not return_attention:
            return out  # [M, C]
        return out, AttentionMap("local", weight, idx=idx)  # weight [M, K, G]

    def _attend(self, query: Tensor, pos_i: Tensor, idx: Tensor, key: Tensor, value: Tensor,
                pos: Tensor) -> tuple[Tensor, Tensor]:
        """The attention of one chunk of rows ``i`` (``query, pos_i, idx`` hold them);
        ``key, value, pos`` are the chunk's window of the node tables, ending in a zero
        row (:func:`~pcattn.nn.chunking.chunked_rows`)."""
        (r, k), c, g = idx.shape, self.out_channels, self.heads
        valid = idx >= 0  # [R, K]
        key_j, value_j = gather_padded(key, idx), gather_padded(value, idx)  # [R, K, C] each
        rel = (gather_padded(pos, idx) - pos_i[:, None, :]) * valid[..., None]  # [R, K, 3]
        # rel = p_j - p_i, zero at padding
        relation = key_j - query[:, None, :]  # [R, K, C]
        if self.pos_mul_nn is not None:
            relation = relation * self.pos_mul_nn(rel)  # [R, K, C]
        delta = self.pos_nn(rel)  # [R, K, C]
        logits = self.attn_nn(relation + delta)  # [R, K, G]
        weight = masked_softmax(logits, valid)  # [R, K, G]
        value_j = (value_j + delta).view(r, k, g, c // g)  # [R, K, G, D]
        out = torch.einsum("mkgd,mkg->mgd", value_j, weight).reshape(r, c)  # [R, C]
        return out, weight
