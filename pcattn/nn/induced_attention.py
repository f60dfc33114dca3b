"""Induced set attention: nodes read a few learned inducing points (Lee et al., ICML 2019)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int
from pcattn.nn.global_inputs import check_heads, global_inputs
from pcattn.nn.multihead import attend, merge_heads, split_heads
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import pack, unpack


class InducedSetAttention(nn.Module):
    r"""Attention of every node to ``m`` inducing points that first read the whole cloud.

    The induced set attention block (ISAB) of "Set Transformer" (Lee, Lee, Kim, Kosiorek,
    Choi, Teh, ICML 2019), per cloud ``X`` of a packed batch, with ``m`` learned inducing
    points ``I [m, C]`` and multi-head attention
    :math:`\mathrm{MHA}(Q, K) = W_o \Vert_h \operatorname{softmax}(Q W^h_q (K W^h_k)^\top
    / \sqrt{D})\, K W^h_v`:

    .. math::
        H' = \mathrm{LN}(I + \mathrm{MHA}(I, X)), \qquad
        H = \mathrm{LN}(H' + \mathrm{relu}(W_f H')), \qquad
        y_i = \mathrm{MHA}(x_i, H)

    ``H`` is the paper's ``MAB(I, X)`` exactly; the second ``MAB(X, H)`` is reduced to its
    attention, like :class:`~pcattn.nn.GlobalSelfAttention`, so the block takes the place
    of full attention in any network (residual, norm and feed-forward stay the caller's).
    Unlike Linformer's learned ``[k, N]`` projection it fixes no ``N`` and is equivariant
    to a permutation of the nodes. Cost: O(N m) time and memory per cloud (two
    ``scaled_dot_product_attention`` calls with a ``[B, 1, 1, N]`` key mask).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        num_inducing: ``m``.
        bias: biases in the projections.
        norm_layer: ``C -> module`` for the two norms of ``MAB(I, X)``.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]``; the block then works on
            ``x + pos_encoding(pos)`` and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [M, C];
        with ``return_attention=True`` also a ``graph`` :class:`AttentionMap` over the
        ``M`` nodes followed by the inducing points (point ``t`` of cloud ``b`` is node
        ``M + b m + t``, ``num_sources = M + B m``): weights [E, H] on the edges into each
        inducing point from the nodes of its cloud (``MHA(I, X)``) and into each node from
        its cloud's inducing points (``MHA(X, H)``); each target's weights sum to 1.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, num_inducing: int = 16, bias: bool = True,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels, c, heads = check_heads(name, in_channels, out_channels, heads)
        num_inducing = check_int(name, "num_inducing", num_inducing)
        self.in_channels, self.out_channels = in_channels, c
        self.heads, self.num_inducing = heads, num_inducing
        self.inducing = nn.Parameter(torch.empty(num_inducing, c))
        self._init_inducing()
        # MAB(I, X): the inducing points read the nodes
        self.lin_q_ind = nn.Linear(c, c, bias=bias)
        self.lin_kv_nodes = nn.Linear(in_channels, 2 * c, bias=bias)
        self.lin_out_ind = nn.Linear(c, c, bias=bias)
        self.norm_ind = norm_layer(c)
        self.lin_ff = nn.Linear(c, c, bias=bias)
        self.norm_ff = norm_layer(c)
        # MHA(X, H): the nodes read the inducing points
        self.lin_q = nn.Linear(in_channels, c, bias=bias)
        self.lin_kv = nn.Linear(c, 2 * c, bias=bias)
        self.lin_out = nn.Linear(c, c, bias=bias)
        self.pos_encoding = pos_encoding

    def _init_inducing(self) -> None:
        """Xavier-uniform inducing points, as in the Set Transformer's code."""
        nn.init.xavier_uniform_(self.inducing)

    def reset_parameters(self) -> None:
        """Default inits of the projections and norms; Xavier-uniform inducing points."""
        reset_children(self)
        self._init_inducing()

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        x, batch = global_inputs(name, x, batch, pos, self.in_channels, self.pos_encoding)
        h = self.heads
        hid, w_ind = self._induce(x, batch, return_attention)  # [B, m, C], [B, H, m, N]
        xd, mask = unpack(self.lin_q(x), batch, num_clouds=hid.shape[0])  # [B, N, C]
        k, v = self.lin_kv(hid).chunk(2, dim=-1)  # [B, m, C] each
        o, w_nodes = attend(split_heads(xd, h), split_heads(k, h), split_heads(v, h),
                            weights=return_attention)  # [B, H, N, D], [B, H, N, m]
        out = self.lin_out(pack(merge_heads(o), mask)[0])  # [M, C]
        if not return_attention:
            return out
        return out, _induced_graph(w_ind, w_nodes, mask)

    def induce(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None
               ) -> Tensor:
        """``H = MAB(I, X)``, the inducing points of each cloud after they read its nodes.

        Shape:
            x: [M, C_in], batch: [M] -> [B, m, C]
        """
        x, batch = global_inputs(type(self).__name__, x, batch, pos, self.in_channels,
                                 self.pos_encoding)
        return self._induce(x, batch, False)[0]

    def _induce(self, x: Tensor, batch: Tensor, weights: bool
                ) -> tuple[Tensor, Tensor | None]:
        """``MAB(I, X)`` per cloud: ``H [B, m, C]`` and its weights ``[B, H, m, N]``."""
        h = self.heads
        kv, mask = unpack(self.lin_kv_nodes(x), batch)  # [B, N, 2C], [B, N]
        b = mask.shape[0]
        ind = self.inducing.expand(b, -1, -1)  # [B, m, C]
        k, v = kv.chunk(2, dim=-1)  # [B, N, C] each
        key_mask = mask | ~mask.any(1, keepdim=True)  # a cloud with no nodes reads padding
        o, w = attend(split_heads(self.lin_q_ind(ind), h), split_heads(k, h),
                      split_heads(v, h), key_mask, weights=weights)  # [B, H, m, D]
        hid = self.norm_ind(ind + self.lin_out_ind(merge_heads(o)))  # [B, m, C]
        hid = self.norm_ff(hid + F.relu(self.lin_ff(hid)))  # [B, m, C]
        if w is not None:
            w = w * mask[:, None, None, :]  # padded keys of an empty cloud: no weight
        return hid, w


def _induced_graph(w_ind: Tensor, w_nodes: Tensor, mask: Tensor) -> AttentionMap:
    """Both attention steps as one ``graph`` map over the nodes then the inducing points.

    Shape:
        w_ind: [B, H, m, N], w_nodes: [B, H, N, m], mask: [B, N] -> weight [E, H],
        edge_index [2, E]
    """
    b, h, t, n = w_ind.shape
    m, dev = int(mask.sum()), mask.device
    node_id = torch.full((b, n), -1, dtype=torch.long, device=dev)  # [B, N]
    node_id[mask] = torch.arange(m, device=dev)
    ind_id = m + torch.arange(b * t, device=dev).view(b, t)  # [B, m]
    src = torch.cat([node_id[:, None, :].expand(b, t, n).reshape(-1),  # nodes -> inducing
                     ind_id[:, None, :].expand(b, n, t).reshape(-1)])  # inducing -> nodes
    tgt = torch.cat([ind_id[:, :, None].expand(b, t, n).reshape(-1),
                     node_id[:, :, None].expand(b, n, t).reshape(-1)])
    weight = torch.cat([w_ind.permute(0, 2, 3, 1).reshape(-1, h),
                        w_nodes.permute(0, 2, 3, 1).reshape(-1, h)])  # [E', H]
    keep = (src >= 0) & (tgt >= 0)
    return AttentionMap("graph", weight[keep], edge_index=torch.stack([src[keep], tgt[keep]]),
                        num_sources=m + b * t)
