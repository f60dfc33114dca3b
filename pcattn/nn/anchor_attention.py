"""Attention to keys and values pooled at farthest-point anchors (compressed attention)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int
from pcattn.nn.global_base import GlobalAttentionBase
from pcattn.nn.multihead import attend, merge_heads
from pcattn.ops.batching import counts_and_ptr, pack, unpack
from pcattn.ops.knn import knn
from pcattn.ops.sampling import farthest_point_sample


class AnchorAttention(GlobalAttentionBase):
    r"""Every node attends to ``S`` keys and values summarised at farthest-point anchors.

    The point-set form of shortened keys and values: Linformer (Wang et al., 2020)
    projects the ``N`` keys to ``k`` with a learned ``[k, N]`` matrix, which fixes ``N``
    and depends on the order of the points; "compressed" attention (Liu et al., ICLR 2018)
    pools keys with a strided convolution. Here each cloud's ``S`` anchors are its
    farthest points (:func:`~pcattn.ops.farthest_point_sample`), every node belongs to
    the cell ``c(j)`` of its nearest anchor, and a cell's key and value are the means of
    its members' (the pooling of a strided convolution over a Voronoi window):

    .. math::
        \bar k_s = \frac{1}{n_s}\sum_{c(j) = s} W_k x_j, \quad
        \bar v_s = \frac{1}{n_s}\sum_{c(j) = s} W_v x_j, \quad
        y_i = W_o \big\Vert_h \sum_s
              \operatorname{softmax}_s\Big(\frac{q^h_i \cdot \bar k^h_s}{\sqrt D}
              + \log n_s\Big)\, \bar v^h_s

    The ``log n_s`` term makes a cell weigh as its ``n_s`` members would if their keys were
    equal, so the block approximates :class:`~pcattn.nn.GlobalSelfAttention` with the same
    weights (the projections have its layout, ``lin_qkv`` and ``lin_out``, and load its
    ``state_dict``) and equals it when ``S >= N``. The anchors and cells do not depend on
    the order of the points, so the output is permutation-equivariant. Cost per cloud:
    FPS and a 1-NN search, then O(N S) attention (one ``scaled_dot_product_attention``
    with a ``[B, 1, 1, S]`` float mask).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        num_anchors: ``S`` per cloud (all nodes of a smaller cloud).
        bias: biases in the projections.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]`` added to ``x`` on entry.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud), pos: [M, 3] (required) -> [M, C];
        with ``return_attention=True`` also a ``global`` :class:`AttentionMap`: weights
        [B, H, N_max, N_max], the weight of node ``j`` in query ``i``'s output
        (``w_{i, c(j)} / n_{c(j)}``: rows sum to 1, zero at padding) and the mask [B, N_max].
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, num_anchors: int = 64, bias: bool = True,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, bias=bias,
                         pos_encoding=pos_encoding)
        self.num_anchors = check_int(type(self).__name__, "num_anchors", num_anchors)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        x, batch = self._inputs(x, batch, pos, pos_needed_for="its anchors are the farthest "
                                                              "points of each cloud")
        h, c = self.heads, self.out_channels
        anchors = farthest_point_sample(pos, batch, num=self.num_anchors)  # [A]
        anchor_batch = batch[anchors]  # [A]
        cell = knn(pos[anchors], 1, anchor_batch, query=pos, query_batch=batch)[:, 0]  # [M]
        q, k, v = self._project(x)  # [M, H, D] each
        size = torch.bincount(cell, minlength=anchors.numel())  # [A]: n_s
        kv = torch.zeros(anchors.numel(), 2, h, c // h, dtype=k.dtype, device=k.device)
        kv = kv.index_add(0, cell, torch.stack([k, v], 1)) / size[:, None, None, None]
        qd, mask = unpack(q, batch)  # [B, N, H, D], [B, N]
        b = mask.shape[0]
        kvd, anchor_mask = unpack(kv, anchor_batch, num_clouds=b)  # [B, S, 2, H, D]
        log_size, _ = unpack(size.to(q.dtype).log(), anchor_batch, num_clouds=b)  # [B, S]
        key_bias = log_size.masked_fill(~anchor_mask, float("-inf"))  # [B, S]
        key_bias[~anchor_mask.any(1)] = 0.0  # a cloud with no nodes reads padding
        kd, vd = kvd.permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, S, D] each
        o, w = attend(qd.transpose(1, 2), kd, vd, key_bias,
                      weights=return_attention)  # [B, H, N, D], [B, H, N, S]
        out = self.lin_out(pack(merge_heads(o), mask)[0])  # [M, C]
        if not return_attention:
            return out
        _, ptr = counts_and_ptr(anchor_batch, b)
        slot, _ = unpack(cell - ptr[batch], batch, num_clouds=b)  # [B, N]: c(j) in cloud
        n_cell = torch.gather(log_size, 1, slot).exp()  # [B, N]: n_{c(j)}
        n = mask.shape[1]
        per_node = torch.gather(w, 3, slot[:, None, None, :].expand(b, h, n, n)) / n_cell[
            :, None, None, :]  # [B, H, N, N]
        per_node = per_node * (mask[:, None, :, None] & mask[:, None, None, :])
        return out, AttentionMap("global", per_node, mask=mask)  # weight [B, H, N, N]
