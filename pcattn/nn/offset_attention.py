"""PCT offset-attention over each cloud (Guo et al., Computational Visual Media 2021)."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_batch_rows, check_features, check_int
from pcattn.nn.chunking import chunked_rows
from pcattn.nn.positional_encoding import apply_pos_encoding
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import check_batch, pack, unpack


class OffsetAttention(nn.Module):
    r"""Offset-attention of the Point Cloud Transformer, per cloud of a packed batch.

    From "PCT: Point Cloud Transformer" (Guo, Cai, Liu, Mu, Martin, Hu, 2021):

    .. math::
        F_{out} = \mathrm{LBR}(F_{in} - F_{sa}) + F_{in}, \qquad
        F_{sa} = \tilde A^\top V

    with energies :math:`E = Q K^\top` (``Q = K`` with shared weights, ``C/4`` channels,
    no ``1/\sqrt{d}``, as in PCT's code), a softmax over each row and then an L1
    normalisation of each column, exactly as PCT's ``SA_Layer`` does:
    ``attention = softmax(energy, dim=-1)``;
    ``attention = attention / (1e-9 + attention.sum(dim=1, keepdim=True))``;
    ``x_r = v @ attention``. So node ``j`` receives :math:`\sum_i \tilde A_{ij} v_i` and
    its weights sum to 1 over ``i``. LBR is ``Linear -> norm -> ReLU``; the norm is
    ``LayerNorm`` by default, not PCT's BatchNorm, whose running statistics make eval
    mode collapse early in training. Padded keys get no energy, padded
    rows are zeroed before the column normalisation, so padding has no weight.

    Cost: without ``return_attention`` no ``[N, N]`` matrix is kept. The column
    normalisation folds into a second softmax: with :math:`l_i = \log\sum_j e^{E_{ij}}`
    (row log-sum-exp, computed in chunks of rows, each recomputed in backward),

    .. math::
        x_r[j] = \frac{\sum_i e^{E_{ij} - l_i} v_i}{\epsilon + \sum_i e^{E_{ij} - l_i}}

    which is attention of query ``k_j`` over keys ``[q_i, -l_i]`` with values ``v_i``, plus
    one "sink" key of logit :math:`\log\epsilon` and value 0 for PCT's ``1e-9``: one
    ``scaled_dot_product_attention`` call (fused kernels, O(N) memory). With
    ``return_attention=True`` the ``[B, N, N]`` matrix is built and returned: about 4 MB
    per cloud at N=1024, 1 GB at N=16384.

    Args:
        in_channels: ``C`` (input and output, residual block).
        qk_channels: size of queries and keys (default ``C // 4``).
        share_qk: use one projection for queries and keys, as PCT does.
        norm_layer: ``C -> module`` for the LBR norm (e.g. ``nn.BatchNorm1d`` for PCT's
            original, at the cost above).
        pos_encoding: absolute encoding ``[M, 3] -> [M, C]``; the block then works on
            ``x + pos_encoding(pos)`` (residual included) and ``forward`` needs ``pos=``.
        chunk_size: elements of the ``[R, B, N]`` energies per chunk of rows in the
            log-sum-exp pass (``None``: one chunk).

    ``forward(..., equal_clouds=B)``: the batch is ``B`` clouds of equal size, made dense
    by a reshape with sizes from the shapes (what ``torch.compile`` traces; see
    :func:`pcattn.ops.unpack`).

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud) -> [M, C];
        with ``return_attention=True`` also a ``global`` :class:`AttentionMap` in PCT's
        orientation: weights [B, 1, N_max, N_max], ``[b, 0, i, j]`` being PCT's
        ``attention[i, j]`` (row ``i`` is the query of the softmax ``softmax_j(q_i . k_j)``,
        then each column ``j`` is L1-normalised, so columns sum to 1 and node ``j``
        receives ``sum_i w[i, j] v_i``; zero at padding), and the mask [B, N_max]; the map
        is marked ``transposed``, so its ``to_sparse()`` gives ``j`` as the query.
    """

    def __init__(self, in_channels: int, *, qk_channels: int | None = None,
                 share_qk: bool = True,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 pos_encoding: Callable | None = None, chunk_size: int | None = 2**22) -> None:
        super().__init__()
        name = type(self).__name__
        self.chunk_size = check_int(name, "chunk_size", chunk_size, optional=True)
        channels = check_int(name, "in_channels", in_channels)
        qk_channels = check_int(name, "qk_channels", qk_channels, optional=True)
        qk_channels = qk_channels or max(1, channels // 4)
        self.in_channels = self.out_channels = channels
        self.eps = 1e-9
        self.lin_q = nn.Linear(channels, qk_channels, bias=False)
        self.lin_k = self.lin_q if share_qk else nn.Linear(channels, qk_channels, bias=False)
        self.lin_v = nn.Linear(channels, channels)
        self.lbr = nn.Sequential(nn.Linear(channels, channels), norm_layer(channels),
                                 nn.ReLU())
        self.pos_encoding = pos_encoding

    def reset_parameters(self) -> None:
        """Default inits of the projections, the LBR (and ``pos_encoding``)."""
        reset_children(self)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False, equal_clouds: int | None = None
                ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        batch = check_batch(batch, x.shape[0], x.device)
        x = apply_pos_encoding(x, pos, self.pos_encoding, name)  # [M, C]
        q, mask = unpack(self.lin_q(x), batch, equal_clouds=equal_clouds)  # [B, N, C_qk], [B, N]
        k, _ = unpack(self.lin_k(x), batch, equal_clouds=equal_clouds)  # [B, N, C_qk]
        v, _ = unpack(self.lin_v(x), batch, equal_clouds=equal_clouds)  # [B, N, C]
        key_mask = (mask | ~mask.any(1, keepdim=True))[:, None, :]  # [B, 1, N]
        if not return_attention:
            x_r = self._offset_fused(q, k, v, mask, key_mask)  # [B, N, C]
            x_r = x_r.flatten(0, 1) if equal_clouds is not None else pack(x_r, mask)[0]
            return x + self.lbr(x - x_r)  # [M, C]
        energy = q @ k.transpose(1, 2)  # [B, N, N]
        attn = torch.softmax(energy.masked_fill(~key_mask, float("-inf")), dim=-1)
        attn = attn * mask[:, :, None]  # [B, N, N]: padded rows i give nothing
        attn = attn / (self.eps + attn.sum(dim=1, keepdim=True))  # columns sum to 1
        x_r = attn.transpose(1, 2) @ v  # [B, N, C]: x_r[j] = sum_i attn[i, j] v_i
        out = x + self.lbr(x - pack(x_r, mask)[0])  # [M, C]
        return out, AttentionMap("global", attn[:, None], mask=mask,
                                 transposed=True)  # weight [B, 1, N, N]

    def _offset_fused(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, key_mask: Tensor
                      ) -> Tensor:
        """``x_r [B, N, C]`` as the class docstring derives it, without an ``[N, N]`` matrix."""
        b, n, c = q.shape
        bias = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill(
            ~key_mask, float("-inf"))  # [B, 1, N]
        (lse,) = chunked_rows(_row_logsumexp, (q.transpose(0, 1),), (k, bias),
                              chunk_size=self.chunk_size, row_elems=b * n, keep=(True,))
        lse = lse.transpose(0, 1)  # [B, N]: l_i
        width = max(v.shape[-1], c + 1)  # fused kernels want one width for q, k and v
        query = F.pad(torch.cat([k, torch.ones_like(k[..., :1])], -1), (0, width - c - 1))
        key = F.pad(torch.cat([q, -lse[..., None]], -1), (0, width - c - 1))  # [B, N, W]
        sink = q.new_zeros(b, 1, width)
        sink[..., c] = math.log(self.eps)  # logit log(eps): PCT's 1e-9 in the denominator
        key = torch.cat([key, sink], 1)  # [B, N + 1, W]
        value = torch.cat([F.pad(v, (0, width - v.shape[-1])), q.new_zeros(b, 1, width)], 1)
        allowed = torch.cat([mask, mask.new_ones(b, 1)], 1)[:, None, None, :]  # [B,1,1,N+1]
        out = F.scaled_dot_product_attention(query[:, None], key[:, None], value[:, None],
                                             attn_mask=allowed, scale=1.0)  # [B, 1, N, W]
        return out[:, 0, :, :v.shape[-1]]  # [B, N, C]


def _row_logsumexp(q: Tensor, k: Tensor, bias: Tensor) -> tuple[Tensor]:
    """Log-sum-exp of the energies of rows ``q [R, B, C_qk]`` over keys ``k [B, N, C_qk]``."""
    energy = torch.einsum("rbc,bnc->rbn", q, k) + bias.transpose(0, 1)  # [R, B, N]
    return (torch.logsumexp(energy, dim=-1),)  # [R, B]
