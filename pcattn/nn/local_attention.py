"""Multi-head scalar (dot-product) self-attention over kNN neighbourhoods."""

from __future__ import annotations

import math
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


class LocalSelfAttention(nn.Module):
    r"""Multi-head dot-product attention of each node over its ``K`` neighbours.

    The transformer's scaled dot-product attention (Vaswani et al. 2017) restricted to a
    neighbourhood, with a relative position encoding added to keys and values as in the
    local window attention of Stratified Transformer (Lai et al., CVPR 2022), whose
    contextual relative encoding is a lookup table; here it is an MLP of ``p_i - p_j``:

    .. math::
        \delta_{ij} = \theta(p_i - p_j), \qquad
        a_{ij}^{(h)} = \operatorname{softmax}_{j \in N(i)}
            \frac{q_i^{(h)} \cdot (k_j + \delta_{ij})^{(h)}}{\sqrt{D}}, \qquad
        y_i = W_o \big\Vert_{h} \sum_{j \in N(i)} a_{ij}^{(h)} (v_j + \delta_{ij})^{(h)}

    with ``q = W_q x``, ``k = W_k x``, ``v = W_v x``, ``theta`` the ``pos_nn`` and the ``C``
    channels split into ``H`` heads of ``D = C / H``. Unlike vector attention (Point
    Transformer, :class:`GroupedVectorAttention`) each head has one scalar weight per
    neighbour. With ``theta = 0`` this is ``torch.nn.MultiheadAttention`` with the centre
    as the query and its neighbours as keys and values.

    Args:
        in_channels: input feature size ``C_in``.
        out_channels: output feature size ``C``, divisible by ``heads``.
        heads: number of heads ``H``.
        pos_nn: ``[*, 3] -> [*, C]``; default ``Linear(3, C), LayerNorm, ReLU, Linear(C, C)``.
        bias: bias in the query, key and value maps.
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
        [M, K, H] (zero at padding) on ``idx``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, heads: int = 4,
        pos_nn: Callable | None = None, bias: bool = True, chunk_size: int | str | None = "auto",
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
        self.lin_q = nn.Linear(in_channels, c, bias=bias)
        self.lin_k = nn.Linear(in_channels, c, bias=bias)
        self.lin_v = nn.Linear(in_channels, c, bias=bias)
        self.lin_out = nn.Linear(c, c)
        self.pos_nn = pos_nn if pos_nn is not None else mlp([3, c, c])

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
        out = self.lin_out(out)  # [M, C]
        if not return_attention:
            return out
        return out, AttentionMap("local", weight, idx=idx)  # weight [M, K, H]

    def _attend(self, query: Tensor, pos_i: Tensor, idx: Tensor, key: Tensor, value: Tensor,
                pos: Tensor) -> tuple[Tensor, Tensor]:
        """The attention of one chunk of rows ``i`` (``query, pos_i, idx`` hold them);
        ``key, value, pos`` are the chunk's window of the node tables, ending in a zero
        row (:func:`~pcattn.nn.chunking.chunked_rows`)."""
        (r, k), c, h = idx.shape, self.out_channels, self.heads
        d = c // h
        valid = idx >= 0  # [R, K]
        key_j, value_j = gather_padded(key, idx), gather_padded(value, idx)  # [R, K, C] each
        rel = (pos_i[:, None, :] - gather_padded(pos, idx)) * valid[..., None]  # [R, K, 3]
        # rel = p_i - p_j, zero at padding
        delta = self.pos_nn(rel)  # [R, K, C]
        key_j = (key_j + delta).view(r, k, h, d)  # [R, K, H, D]
        value_j = (value_j + delta).view(r, k, h, d)  # [R, K, H, D]
        query = query.view(r, h, d)  # [R, H, D]
        logits = torch.einsum("mhd,mkhd->mkh", query, key_j) / math.sqrt(d)  # [R, K, H]
        weight = masked_softmax(logits, valid)  # [R, K, H]
        out = torch.einsum("mkh,mkhd->mhd", weight, value_j).reshape(r, c)  # [R, C]
        return out, weight
