"""Point Transformer vector attention over kNN neighbourhoods (Zhao et al., ICCV 2021)."""

from __future__ import annotations

from typing import Callable

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int, local_neighbors
from pcattn.nn.chunking import RECOMPUTE_ABOVE, check_chunking, chunked_rows
from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.checks import may_read_values
from pcattn.ops.gather import gather_padded, padded_rows
from pcattn.ops.softmax import masked_softmax


class PointTransformerLayer(nn.Module):
    r"""Vector self-attention over each node's neighbours ``idx [M, K]``.

    From "Point Transformer" (Zhao, Jiang, Jia, Torr, Koltun, ICCV 2021):

    .. math::
        y_i = \sum_{j \in N(i)} \rho\big(\gamma(\varphi(x_i) - \psi(x_j) + \delta_{ij})\big)
              \odot \big(\alpha(x_j) + \delta_{ij}\big),
        \qquad \delta_{ij} = \theta(p_i - p_j)

    with ``phi, psi, alpha`` linear maps (``lin_dst``, ``lin_src``, ``lin``), ``theta`` the
    relative positional encoding (``pos_nn``), ``gamma`` the attention MLP (``attn_nn``)
    and ``rho`` a softmax over the K neighbours, taken per channel. This is the formula of
    PyG's ``PointTransformerConv``; with ``pos_nn=Linear(3, C)`` and
    ``attn_nn=Identity()`` the two agree number for number on the same neighbourhoods, and
    the layer loads the conv's ``state_dict`` (:meth:`from_pyg` copies one).
    Work is dense over ``[M, K, C]``: no scatter and no ``[N, N]`` matrix. Injected
    ``pos_nn`` / ``attn_nn`` must act on the last dimension only (chunks of rows are fed
    separately) and be deterministic (chunks are recomputed in backward).

    Args:
        in_channels: input feature size ``C_in``.
        out_channels: output feature size ``C``.
        pos_nn: ``[*, 3] -> [*, C]``; default ``Linear(3, C), LayerNorm, ReLU, Linear(C, C)``.
        attn_nn: ``[*, C] -> [*, C]``; default ``Linear, LayerNorm, ReLU, Linear``.
        chunk_size: elements of ``[R, K, C]`` handled at once (rows go in chunks of ``R``);
            ``"auto"``: cache-sized chunks on the CPU, one chunk elsewhere; ``None``: one
            chunk, all kept (:func:`pcattn.nn.chunking.chunked_rows`).
        recompute_above: memory budget, in elements of ``[M, K, C]``: above it each chunk
            is recomputed in backward, so the intermediates never exist whole; ``None``:
            never recompute.
        add_self_loops: with ``edge_index=``, make each node its own neighbour exactly
            once, as ``PointTransformerConv`` does by default; ``idx`` is taken as given.

    Shape:
        x: [M, C_in], pos: [M, 3], idx: [M, K] (``-1`` padded) or edge_index: [2, E]
        (PyG's, converted by :func:`pcattn.ops.edge_index_to_neighbors`) -> [M, C];
        with ``return_attention=True`` also a ``local`` :class:`AttentionMap`: weights
        [M, K, C] (one per channel, zero at padding) on ``idx``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, pos_nn: Callable | None = None,
        attn_nn: Callable | None = None, chunk_size: int | str | None = "auto",
        recompute_above: int | None = RECOMPUTE_ABOVE, add_self_loops: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.add_self_loops = add_self_loops
        self.chunk_size, self.recompute_above = check_chunking(
            name, chunk_size, recompute_above)
        self.lin = nn.Linear(in_channels, out_channels, bias=False)  # alpha: value
        self.lin_src = nn.Linear(in_channels, out_channels, bias=False)  # psi: key
        self.lin_dst = nn.Linear(in_channels, out_channels, bias=False)  # phi: query
        self.pos_nn = pos_nn if pos_nn is not None else mlp([3, out_channels, out_channels])
        self.attn_nn = (attn_nn if attn_nn is not None
                        else mlp([out_channels, out_channels, out_channels]))

    def reset_parameters(self) -> None:
        """Default inits of the linear maps and of ``pos_nn`` / ``attn_nn``."""
        reset_children(self)

    @classmethod
    def from_pyg(cls, conv: nn.Module) -> "PointTransformerLayer":
        """The layer of a PyG ``PointTransformerConv``, with copies of its weights and
        sub-networks (``attn_nn=None`` there is ``Identity()`` here) and its
        ``add_self_loops``; outputs agree with the conv's on the same graph."""
        c_in = conv.in_channels
        if not isinstance(c_in, int):  # a (source, target) pair
            if c_in[0] != c_in[1]:
                raise ValueError(f"{cls.__name__}.from_pyg: the conv is bipartite (in_channels="
                                 f"{c_in}); this layer takes one width for both")
            c_in = c_in[0]
        attn_nn = nn.Identity() if conv.attn_nn is None else copy.deepcopy(conv.attn_nn)
        weight = conv.lin.weight
        layer = cls(c_in, conv.out_channels, pos_nn=copy.deepcopy(conv.pos_nn),
                    attn_nn=attn_nn, add_self_loops=conv.add_self_loops
                    ).to(device=weight.device, dtype=weight.dtype)
        layer.load_state_dict(conv.state_dict())
        return layer

    def forward(
        self, x: Tensor, pos: Tensor, idx: Tensor | None = None, *,
        edge_index: Tensor | None = None, return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        idx = local_neighbors(type(self).__name__, x, pos, idx, edge_index, self.in_channels,
                              add_self_loops=self.add_self_loops)
        c = self.out_channels
        # a masked softmax only where padding may be: reading idx is free on the CPU
        # but would synchronise with a device or break a compiled graph
        padded = not may_read_values(idx) or bool((idx < 0).any())
        # folding costs a few [C, C] x [C, C] products per call: worth it when the edges
        # outnumber C * C (the early, wide stages of a network)
        folded = self._folded_maps() if idx.numel() >= c * c else None
        if folded is None:
            attend, query, shared = self._attend, self.lin_dst(x), (padded,)
            tables = (-self.lin_src(x), self.lin(x), pos)  # [M, C], [M, C], [M, 3]
        else:
            head, delta, first, tail = folded
            w_first = first.weight  # W_a
            b_query = _add_bias(first.bias, None if delta.bias is None
                                else w_first @ delta.bias)  # b_a + W_a b_d
            attend, shared = self._attend_folded, (padded, head, delta.weight,
                                                    w_first @ delta.weight, tail)
            query = F.linear(x, w_first @ self.lin_dst.weight, b_query)  # [M, C]
            tables = (F.linear(x, -(w_first @ self.lin_src.weight)),  # [M, C]: -W_a k_j
                      F.linear(x, self.lin.weight, delta.bias), pos)  # v_j + b_d, p_j
        out, weight = chunked_rows(
            attend, (query, pos, idx), shared, tables=tables, index=2,
            chunk_size=self.chunk_size, row_elems=idx.shape[1] * c,
            keep=(True, return_attention), recompute_above=self.recompute_above)
        if not return_attention:
            return out  # [M, C]
        return out, AttentionMap("local", weight, idx=idx)  # weight [M, K, C]

    def _folded_maps(self) -> tuple[list, nn.Linear, nn.Linear, list] | None:
        """``pos_nn`` as (its modules but the last, its last ``Linear``) and ``attn_nn`` as
        (its first ``Linear``, the rest), when they end and start with a ``Linear``."""
        pos_nn, attn_nn = self.pos_nn, self.attn_nn
        pos_list = [pos_nn] if isinstance(pos_nn, nn.Linear) else (
            list(pos_nn) if isinstance(pos_nn, nn.Sequential) else [])
        attn_list = [attn_nn] if isinstance(attn_nn, nn.Linear) else (
            list(attn_nn) if isinstance(attn_nn, nn.Sequential) else [])
        if not (pos_list and attn_list and isinstance(pos_list[-1], nn.Linear)
                and isinstance(attn_list[0], nn.Linear)):
            return None
        return pos_list[:-1], pos_list[-1], attn_list[0], attn_list[1:]

    def _attend(self, query: Tensor, pos_i: Tensor, idx: Tensor, neg_key: Tensor,
                value: Tensor, pos: Tensor, padded: bool) -> tuple[Tensor, Tensor]:
        """The attention of rows ``i`` of one chunk: ``query, pos_i, idx`` hold those rows;
        ``neg_key, value, pos`` are the chunk's window of the node tables, ending in a
        zero row (:func:`~pcattn.nn.chunking.chunked_rows`)."""
        neg_key_j, value_j = gather_padded(neg_key, idx), gather_padded(value, idx)  # [R, K, C]
        rel = pos_i[:, None, :] - gather_padded(pos, idx)  # [R, K, 3]: p_i - p_j
        delta = self.pos_nn(rel)  # [R, K, C]: theta(p_i - p_j)
        logits = self.attn_nn(neg_key_j + delta + query[:, None, :])  # [R, K, C]
        return self._weigh(logits, value_j + delta, idx, padded)

    def _attend_folded(self, query: Tensor, pos_i: Tensor, idx: Tensor, neg_key: Tensor,
                       value: Tensor, pos: Tensor, padded: bool, head: list, w_delta: Tensor,
                       w_first_delta: Tensor, tail: list) -> tuple[Tensor, Tensor]:
        r""":meth:`_attend` with ``pos_nn``'s last linear map folded into ``attn_nn``'s
        first (``W_d, b_d`` and ``W_a, b_a``), which then acts per node:

        .. math::
            W_a(q_i - k_j + \delta_{ij}) + b_a
                = \underbrace{W_a q_i + b_a + W_a b_d}_{\text{query}}
                - \underbrace{W_a k_j}_{\text{neg\_key}} + (W_a W_d)\, h_{ij},
            \qquad v_j + \delta_{ij} = \underbrace{v_j + b_d}_{\text{value}} + W_d\, h_{ij}

        with ``h`` the output of ``pos_nn`` before its last linear map. Per edge this saves
        the bias copies and the sums before ``attn_nn``, and keeps one ``[R, K, C]`` less
        for backward."""
        r, k = idx.shape
        rows = padded_rows(idx, pos.shape[0])  # [R * K] into each (padded) table
        h = pos_i[:, None, :] - pos.index_select(0, rows).view(r, k, -1)  # [R, K, 3]: p_i - p_j
        for module in head:
            h = module(h)  # [R, K, H]
        # the gathered rows are tensors of their own: the products are added in place, in
        # their dtype (in-place ops are not autocast: cast as autocast's addmm would)
        value_j = value.index_select(0, rows)  # [R * K, C]
        h, dtype = h.reshape(r * k, -1).to(value_j.dtype), value_j.dtype
        value_delta = value_j.addmm_(h, w_delta.t().to(dtype))  # [R * K, C]
        first = neg_key.index_select(0, rows).addmm_(h, w_first_delta.t().to(dtype))
        logits = first.view(r, k, -1) + query[:, None, :]  # [R, K, C]
        for module in tail:
            logits = module(logits)  # [R, K, C]
        return self._weigh(logits, value_delta.view(r, k, -1), idx, padded)

    @staticmethod
    def _weigh(logits: Tensor, value: Tensor, idx: Tensor, padded: bool
               ) -> tuple[Tensor, Tensor]:
        """Softmax over the K neighbours per channel, and the weighted sum of ``value``."""
        if padded:
            weight = masked_softmax(logits, idx >= 0)  # [R, K, C]
        else:
            weight = torch.softmax(logits, dim=1)  # [R, K, C]
        return (weight * value).sum(dim=1), weight  # [R, C], [R, K, C]


def _add_bias(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """``a + b`` where either may be missing (a ``Linear`` without bias)."""
    return b if a is None else (a if b is None else a + b)
