"""Global multi-head self-attention over all nodes of each cloud (Vaswani et al., 2017)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.global_base import GlobalAttentionBase
from pcattn.ops.batching import pack, unpack

_SCORES = ("dot", "additive")
_CHUNK_ELEMS = 1 << 22  # elements of one [B, H, chunk, N, D] additive-score block (16 MB)


class GlobalSelfAttention(GlobalAttentionBase):
    r"""Multi-head self-attention among the nodes of each cloud of a packed batch.

    From "Attention Is All You Need" (Vaswani et al., 2017), per cloud:

    .. math::
        y_i = W_o \big\Vert_{h=1}^{H} \sum_{j} \operatorname{softmax}_j(s^h_{ij})\,
              W^h_v x_j,
        \qquad s^h_{ij} = \frac{(W^h_q x_i)^\top W^h_k x_j}{\sqrt{D}}
        \ \text{(``score="dot"``)}

    or, with ``score="additive"`` (Bahdanau et al., 2015),
    :math:`s^h_{ij} = w_h^\top \tanh(W^h_q x_i + W^h_k x_j)`. ``j`` runs over the nodes of
    ``i``'s cloud only: the packed batch is unpacked to ``[B, H, N, D]`` and padded keys
    are masked by a ``[B, 1, 1, N]`` key-padding mask, which keeps
    ``scaled_dot_product_attention`` on its fused path, so no ``[N, N]`` matrix is held
    (measured: +~20 MB at N=8192 instead of 2 GB). ``return_attention=True`` computes
    ``[B, H, N, N]`` explicitly instead (same numbers). Additive scoring cannot be fused:
    it holds ``[B, H, N, N]`` scores plus ``[B, H, n_q, N, D]`` tanh terms for a chunk of
    ``n_q`` queries (sized to ~16 MB; recomputed in backward rather than stored), i.e.
    O(B H N^2) memory and O(B H N^2 D) work.

    The parameters mirror ``torch.nn.MultiheadAttention`` (``lin_qkv`` is its
    ``in_proj``, ``lin_out`` its ``out_proj``), and with the same weights the two agree.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        score: ``"dot"`` or ``"additive"``.
        dropout: dropout on the attention weights (training only).
        bias: biases in the projections.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]``; the block then attends
            over ``x + pos_encoding(pos)`` and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [M, C];
        with ``return_attention=True`` also a ``global`` :class:`AttentionMap`: weights
        [B, H, N_max, N_max] (``[b, h, i, j]``: weight of node ``j`` for query ``i`` of
        cloud ``b``, by position within the cloud; zero in padded rows and columns) and
        the mask [B, N_max] of real nodes.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, score: str = "dot", dropout: float = 0.0,
                 bias: bool = True, pos_encoding: Callable | None = None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, bias=bias,
                         pos_encoding=pos_encoding)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        self.score, self.dropout = score, dropout
        if score == "additive":
            self.score_weight = nn.Parameter(torch.empty(self.heads,
                                                         self.out_channels // self.heads))
            self._init_score()

    def _init_score(self) -> None:
        """``w_h ~ N(0, 1/D)``: additive scores start at unit scale."""
        d = self.score_weight.shape[1]
        with torch.no_grad():
            self.score_weight.copy_(torch.randn_like(self.score_weight) / d ** 0.5)

    def reset_parameters(self) -> None:
        """Default inits of the projections (and ``pos_encoding``); ``w_h ~ N(0, 1/D)``."""
        super().reset_parameters()
        if self.score == "additive":
            self._init_score()

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        x, batch = self._inputs(x, batch, pos)
        h, c = self.heads, self.out_channels
        qkv, mask = unpack(self.lin_qkv(x), batch)  # [B, N, 3C], [B, N]
        b, n = mask.shape
        qkv = qkv.view(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)  # [3, B, H, N, D]
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, N, D] each
        # a cloud id with no nodes would mask every key: let its (padded) rows see all
        key_mask = (mask | ~mask.any(1, keepdim=True))[:, None, None, :]  # [B, 1, 1, N]
        p_drop = self.dropout if self.training else 0.0
        weight = None
        if self.score == "dot" and not return_attention:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                                 dropout_p=p_drop)  # [B, H, N, D]
        else:
            logits = (self._additive_logits(q, k) if self.score == "additive"
                      else q @ k.transpose(-1, -2) * (c // h) ** -0.5)  # [B, H, N, N]
            weight = torch.softmax(logits.masked_fill(~key_mask, float("-inf")), dim=-1)
            weight = F.dropout(weight, p_drop)  # [B, H, N, N]
            out = weight @ v  # [B, H, N, D]
        out = out.transpose(1, 2).reshape(b, n, c)  # [B, N, C]
        out = self.lin_out(pack(out, mask)[0])  # [M, C]
        if not return_attention:
            return out
        weight = weight * (mask[:, None, :, None] & mask[:, None, None, :])
        return out, AttentionMap("global", weight, mask=mask)  # weight [B, H, N, N]

    def _additive_logits(self, q: Tensor, k: Tensor) -> Tensor:
        """``w_h . tanh(q_i + k_j)`` in chunks of queries. [B, H, N, D] -> [B, H, N, N]."""
        b, h, n, d = q.shape
        rows = max(1, _CHUNK_ELEMS // max(1, b * h * n * d))
        w = self.score_weight[None, :, None, None, :]  # [1, H, 1, 1, D]
        recompute = torch.is_grad_enabled() and (q.requires_grad or w.requires_grad)
        chunks = []
        for r0 in range(0, n, rows):
            if recompute:  # keep only inputs for backward, not the [.., n_q, N, D] tanh
                chunks.append(checkpoint(_additive_chunk, q[:, :, r0:r0 + rows], k, w,
                                         use_reentrant=False))
            else:
                chunks.append(_additive_chunk(q[:, :, r0:r0 + rows], k, w))
        return torch.cat(chunks, dim=2) if chunks else q.new_zeros(b, h, 0, n)


def _additive_chunk(q: Tensor, k: Tensor, w: Tensor) -> Tensor:
    """``sum_d w_d tanh(q_id + k_jd)``: [B, H, n_q, D], [B, H, N, D] -> [B, H, n_q, N]."""
    t = torch.tanh(q[:, :, :, None, :] + k[:, :, None, :, :])  # [B, H, n_q, N, D]
    return (t * w).sum(-1)  # [B, H, n_q, N]
