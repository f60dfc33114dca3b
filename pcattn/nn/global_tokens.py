"""Learned global tokens per cloud (the "global attention" of sparse transformers)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.positional_encoding import apply_pos_encoding
from pcattn.ops.batching import batch_size, check_batch, unpack
from pcattn.ops.gather import gather


class GlobalTokenAttention(NamedTuple):
    """Weights of :class:`GlobalTokens`, as used by its forward.

    ``tokens [B, H, T, T + N_max]``: what each token read, the ``T`` tokens first, then
    the nodes of its cloud by position (zero at padding). ``nodes [M, H, T (+ K)]``: what
    each node read, the ``T`` tokens first, then its ``K`` neighbours when ``idx`` was
    given (zero at ``-1``).
    """

    tokens: Tensor
    nodes: Tensor


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
        channels: ``C`` (input and output).
        num_tokens: ``T``.
        heads: ``H``; ``D = C / H``.
        norm_layer: ``C -> module`` for the pre-norms (``nn.Identity`` for none).
        pos_encoding: absolute encoding ``[M, 3] -> [M, C]``; the block then works on
            ``x + pos_encoding(pos)`` (residual included) and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud), idx: [M, K] (optional) -> [M, C];
        ``return_tokens=True`` adds the updated tokens [B, T, C];
        ``return_attention=True`` adds a :class:`GlobalTokenAttention` (last).
    """

    def __init__(self, channels: int, *, num_tokens: int = 4, heads: int = 4,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} is not divisible by heads={heads}")
        self.channels, self.num_tokens, self.heads = channels, num_tokens, heads
        self.tokens = nn.Parameter(torch.randn(num_tokens, channels) * 0.02)
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

    def forward(self, x: Tensor, batch: Tensor | None = None,
                return_attention: bool = False, *, pos: Tensor | None = None,
                idx: Tensor | None = None, return_tokens: bool = False):
        batch = check_batch(batch, x.shape[0], x.device)
        x = apply_pos_encoding(x, pos, self.pos_encoding)  # [M, C]
        m, c, h, t = x.shape[0], self.channels, self.heads, self.num_tokens
        d, b = c // h, batch_size(batch)
        xn = self.norm_nodes(x)  # [M, C]

        # 1. each cloud's tokens attend to its tokens and nodes
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

        result: tuple = (out,)
        if return_tokens:
            result += (g,)
        if return_attention:
            result += (GlobalTokenAttention(w_tok * key_mask, w_node),)
        return result[0] if len(result) == 1 else result
