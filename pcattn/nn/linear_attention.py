"""Linear (kernelized) attention over each cloud (Katharopoulos et al., ICML 2020)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.global_base import GlobalAttentionBase
from pcattn.ops.batching import batch_size, unpack


def elu_feature_map(x: Tensor) -> Tensor:
    """``phi(x) = elu(x) + 1``, the positive feature map of Katharopoulos et al."""
    return F.elu(x) + 1.0


class LinearAttention(GlobalAttentionBase):
    r"""Multi-head linear attention among the nodes of each cloud, in O(N) memory.

    From "Transformers are RNNs" (Katharopoulos, Vyas, Pappas, Fleuret, ICML 2020): the
    softmax kernel is replaced by :math:`\phi(q)^\top \phi(k)` with
    :math:`\phi = \mathrm{elu} + 1`, so the sums over keys factor out per cloud:

    .. math::
        y_i = W_o \big\Vert_{h} \frac{\phi(q^h_i)^\top \sum_{j} \phi(k^h_j)\,(v^h_j)^\top}
              {\phi(q^h_i)^\top \sum_{j} \phi(k^h_j) + \varepsilon}

    with ``j`` over the nodes of ``i``'s cloud. The per-cloud sums ``[H, D, D]`` and
    ``[H, D]`` are taken on the packed nodes of each cloud (no padding, no ``[N, N]``
    matrix): memory O(M H D + B H D^2), work O(M H D^2). The clouds are walked in a
    Python loop of ``B`` steps, each two small matrix products; a vectorised segment
    sum of per-node outer products (``index_add``) would hold ``[M, H, D, D]``, and its
    use in the numerator would be saved for backward, ``D`` times the memory.

    ``return_attention=True`` also computes the explicit weights
    :math:`\phi(q_i)^\top\phi(k_j) / (\sum_j \phi(q_i)^\top \phi(k_j) + \varepsilon)`
    (``[B, H, N, N]``, for visualization); they multiply ``v`` into the same output.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        feature_map: positive ``phi`` applied to queries and keys (default ``elu + 1``).
        eps: added to the denominator, as in the paper's code.
        bias: biases in the projections.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]``; the block then works on
            ``x + pos_encoding(pos)`` and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [M, C];
        with ``return_attention=True`` also a ``global`` :class:`AttentionMap`: weights
        [B, H, N_max, N_max] (rows sum to 1 up to ``eps``, zero at padding) and the mask.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, feature_map: Callable[[Tensor], Tensor] | None = None,
                 eps: float = 1e-6, bias: bool = True,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, bias=bias,
                         pos_encoding=pos_encoding)
        self.feature_map = feature_map if feature_map is not None else elu_feature_map
        self.eps = eps

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        x, batch = self._inputs(x, batch, pos)
        q, k, v = self._project(x)  # [M, H, D] each
        q, k = self.feature_map(q), self.feature_map(k)  # [M, H, D], positive
        counts = torch.bincount(batch, minlength=batch_size(batch)).tolist()
        outs = []
        for qb, kb, vb in zip(q.split(counts), k.split(counts), v.split(counts)):
            kv = torch.einsum("nhd,nhe->hde", kb, vb)  # [H, D, D]
            z = kb.sum(0)  # [H, D]
            num = torch.einsum("nhd,hde->nhe", qb, kv)  # [N, H, D]
            den = torch.einsum("nhd,hd->nh", qb, z) + self.eps  # [N, H]
            outs.append(num / den[..., None])
        out = torch.cat(outs, 0) if outs else v  # [M, H, D]
        out = self._output(out)  # [M, C]
        if not return_attention:
            return out
        qd, mask = unpack(q, batch)  # [B, N, H, D], [B, N]
        kd, _ = unpack(k, batch)  # [B, N, H, D]
        a = torch.einsum("bnhd,bshd->bhns", qd, kd)  # [B, H, N, N]
        a = a * (mask[:, None, :, None] & mask[:, None, None, :])
        a = a / (a.sum(-1, keepdim=True) + self.eps)
        return out, AttentionMap("global", a, mask=mask)  # weight [B, H, N, N]
