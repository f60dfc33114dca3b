"""Learned global tokens per cloud (the "global attention" of sparse transformers)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import (
    check_batch_rows,
    check_features,
    check_int,
    check_neighbor_rows,
)
from pcattn.nn.positional_encoding import apply_pos_encoding
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import batch_size, check_batch, unpack
from pcattn.ops.gather import gather


class GlobalTokens(nn.Module):
    r"""A few learned tokens per cloud that read every node and are read by every node.

    The "global attention" of Longformer (Beltagy et al., 2020) and the global tokens of
    BigBird (Zaheer et al., 2020) / Star-Transformer, on a packed batch of clouds. Each
    cloud gets a copy of ``T`` learned tokens ``g``; then, with pre-norms and ``H`` heads
    of scaled dot-product attention,

    .. math::
        g' = g + \mathrm{Attn}\big(g \to [g;\ x_{1..N}]\big), \qquad
        y_i = x_i + \mathrm{Attn}\big(x_i \to [g'_{1..T};\ x_{j \in N(i)}]\big)

    so information crosses the whole cloud in two hops at O(N T) cost. The nodes' keys
    are the tokens alone, or, given ``idx [M, K]``, the tokens and the node's neighbours
    under one softmax (Longformer's sliding window + global tokens). To add global
    context to any other local block, compose: ``x = local(x, pos, idx)`` then
    ``x = tokens(x, batch)``. Step 1 runs ``scaled_dot_product_attention`` over
    ``[B, H, T, T + N]`` with a ``[B, 1, 1, T + N]`` key mask; step 2 gathers the ``T``
    tokens per node (``[M, T, C]``).

    Args:
        in_channels: ``C`` (input and output).
        num_tokens: ``T``.
        heads: ``H``; ``D = C / H``.
        norm_layer: ``C -> module`` for the pre-norms (``nn.Identity`` for none).
        pos_encoding: absolute encoding ``[M, 3] -> [M, C]``; the block then works on
            ``x + pos_encoding(pos)`` (residual included) and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud), idx: [M, K] (optional) -> [M, C];
        with ``return_attention=True`` also a ``graph`` :class:`AttentionMap` over the
        ``M`` nodes followed by the tokens (token ``t`` of cloud ``b`` is node
        ``M + b T + t``): weights [E, H] on ``edge_index [2, E]``, the edges into each
        token (from the ``T`` tokens and the nodes of its cloud) and into each node (from
        the ``T`` tokens of its cloud and its valid neighbours); each target's weights
        sum to 1. :meth:`update_tokens` gives the updated tokens [B, T, C].
    """

    def __init__(self, in_channels: int, *, num_tokens: int = 4, heads: int = 4,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        channels = check_int(name, "in_channels", in_channels)
        num_tokens = check_int(name, "num_tokens", num_tokens)
        heads = check_int(name, "heads", heads)
        if channels % heads:
            raise ValueError(f"{name}: in_channels={channels} is not divisible by heads={heads}")
        self.in_channels = self.out_channels = channels
        self.num_tokens, self.heads = num_tokens, heads
        self.tokens = nn.Parameter(torch.empty(num_tokens, channels))
        self._init_tokens()
        self.norm_nodes = norm_layer(channels)
        self.norm_tokens = norm_layer(channels)
        self.norm_tokens_out = norm_layer(channels)
        # step 1: tokens read tokens and nodes
        self.lin_q_tok = nn.Linear(channels, channels)
        self.lin_kv_tok = nn.Linear(channels, 2 * channels)
        self.lin_out_tok = nn.Linear(channels, channels)
        # step 2: nodes read the updated tokens (and their neighbours)
        self.lin_q_node = nn.Linear(channels, channels)
        self.lin_kv_node = nn.Linear(channels, 2 * channels)
        self.lin_out_node = nn.Linear(channels, channels)
        self.pos_encoding = pos_encoding

    def _init_tokens(self) -> None:
        """Tokens ``~ N(0, 0.02^2)`` (BERT's / ViT's init of learned embeddings)."""
        with torch.no_grad():
            self.tokens.copy_(torch.randn_like(self.tokens) * 0.02)

    def reset_parameters(self) -> None:
        """Default inits of the projections and norms; tokens ``~ N(0, 0.02^2)``."""
        reset_children(self)
        self._init_tokens()

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                idx: Tensor | None = None, return_attention: bool = False
                ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        if idx is not None:
            check_neighbor_rows(name, idx, x.shape[0])
        batch = check_batch(batch, x.shape[0], x.device)
        x = apply_pos_encoding(x, pos, self.pos_encoding, name)  # [M, C]
        m, c, h, t = x.shape[0], self.out_channels, self.heads, self.num_tokens
        d = c // h
        xn = self.norm_nodes(x)  # [M, C]
        g, w_tok, mask = self._read_nodes(xn, batch, return_attention)  # [B, T, C]

        # 2. each node attends to its cloud's tokens (and to its neighbours)
        q = self.lin_q_node(xn).view(m, h, d)  # [M, H, D]
        kv_g = self.lin_kv_node(self.norm_tokens_out(g))[batch]  # [M, T, 2C]
        k, v = kv_g.view(m, t, 2, h, d).unbind(2)  # [M, T, H, D] each
        if idx is not None:
            kv_j = gather(self.lin_kv_node(xn), idx)  # [M, K, 2C]
            k_j, v_j = kv_j.view(m, -1, 2, h, d).unbind(2)  # [M, K, H, D] each
            k, v = torch.cat([k, k_j], dim=1), torch.cat([v, v_j], dim=1)  # [M, T+K, H, D]
        logits = torch.einsum("mhd,mshd->mhs", q, k) * d ** -0.5  # [M, H, T (+ K)]
        if idx is not None:
            valid = torch.cat([idx.new_ones(m, t, dtype=torch.bool), idx >= 0], dim=1)
            logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
        w_node = torch.softmax(logits, dim=-1)  # [M, H, T (+ K)]
        o = torch.einsum("mhs,mshd->mhd", w_node, v).reshape(m, c)  # [M, C]
        out = x + self.lin_out_node(o)  # [M, C]
        if not return_attention:
            return out
        return out, _token_graph(w_tok, mask, w_node, batch, idx)

    def update_tokens(self, x: Tensor, batch: Tensor | None = None, *,
                      pos: Tensor | None = None) -> Tensor:
        """The tokens of each cloud after they read its nodes (step 1 of ``forward``).

        Shape:
            x: [M, C], batch: [M] -> [B, T, C]
        """
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        batch = check_batch(batch, x.shape[0], x.device)
        x = apply_pos_encoding(x, pos, self.pos_encoding, name)  # [M, C]
        return self._read_nodes(self.norm_nodes(x), batch, False)[0]

    def _read_nodes(self, xn: Tensor, batch: Tensor, return_attention: bool
                    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Step 1: each cloud's tokens attend to its tokens and (normalised) nodes ``xn``.

        Returns the updated tokens [B, T, C], their weights [B, H, T, T + N_max] (or
        ``None``) and the node mask [B, N_max].
        """
        c, h, t = self.out_channels, self.heads, self.num_tokens
        d, b = c // h, batch_size(batch)
        g = self.tokens.expand(b, t, c)  # [B, T, C]
        gn = self.norm_tokens(g)  # [B, T, C]
        q = self.lin_q_tok(gn).view(b, t, h, d).transpose(1, 2)  # [B, H, T, D]
        kv_nodes, mask = unpack(self.lin_kv_tok(xn), batch, num_clouds=b)  # [B, N, 2C]
        kv = torch.cat([self.lin_kv_tok(gn), kv_nodes], dim=1)  # [B, T + N, 2C]
        k, v = kv.view(b, -1, 2, h, d).permute(2, 0, 3, 1, 4)  # [B, H, T + N, D] each
        key_mask = torch.cat([mask.new_ones(b, t), mask], dim=1)[:, None, None, :]
        w_tok = None
        if return_attention:
            logits = (q @ k.transpose(-1, -2)) * d ** -0.5  # [B, H, T, T + N]
            w_tok = torch.softmax(logits.masked_fill(~key_mask, float("-inf")), dim=-1)
            o = w_tok @ v  # [B, H, T, D]
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # [B, H, T, D]
        g = g + self.lin_out_tok(o.transpose(1, 2).reshape(b, t, c))  # [B, T, C]
        return g, w_tok, mask


def _token_graph(w_tok: Tensor, mask: Tensor, w_node: Tensor, batch: Tensor,
                 idx: Tensor | None) -> AttentionMap:
    """Both steps' weights as one ``graph`` map over the nodes then the tokens.

    Shape:
        w_tok: [B, H, T, T + N], mask: [B, N], w_node: [M, H, T (+ K)], batch: [M],
        idx: [M, K] -> weight [E, H], edge_index [2, E]
    """
    (b, h, t, _), m = w_tok.shape, batch.shape[0]
    dev = batch.device
    token_id = m + torch.arange(b * t, device=dev).view(b, t)  # [B, T]
    node_id = torch.full(mask.shape, -1, dtype=torch.long, device=dev)  # [B, N]
    node_id[mask] = torch.arange(m, device=dev)
    src_tok = torch.cat([token_id, node_id], dim=1)[:, None, :].expand(b, t, -1)  # [B, T, T+N]
    tgt_tok = token_id[:, :, None].expand_as(src_tok)  # [B, T, T + N]
    src_node = token_id[batch]  # [M, T]
    if idx is not None:
        src_node = torch.cat([src_node, idx], dim=1)  # [M, T + K]
    tgt_node = torch.arange(m, device=dev)[:, None].expand_as(src_node)  # [M, T (+ K)]
    source = torch.cat([src_tok.reshape(-1), src_node.reshape(-1)])  # [E']
    target = torch.cat([tgt_tok.reshape(-1), tgt_node.reshape(-1)])  # [E']
    weight = torch.cat([w_tok.permute(0, 2, 3, 1).reshape(-1, h),
                        w_node.permute(0, 2, 1).reshape(-1, h)])  # [E', H]
    keep = source >= 0
    edge_index = torch.stack([source[keep], target[keep]])  # [2, E]
    return AttentionMap("graph", weight[keep], edge_index=edge_index, num_sources=m + b * t)
