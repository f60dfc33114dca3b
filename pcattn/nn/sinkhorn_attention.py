"""Sparse Sinkhorn attention over blocks of a space-filling-curve order (Tay et al., 2020)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int
from pcattn.nn.global_base import GlobalAttentionBase
from pcattn.ops.batching import counts_and_ptr, unpack
from pcattn.ops.serialize import ORDERS, patches, serialize

_WHY_POS = "its blocks are runs of a space-filling-curve order"


def log_sinkhorn(logits: Tensor, mask: Tensor, iters: int) -> Tensor:
    r"""``iters`` Sinkhorn normalisations of ``exp(logits)`` in log space, per cloud.

    Alternately subtracts the log-sum-exp of every row and of every column (Sinkhorn,
    1964; Mena et al., ICLR 2018), so no ``exp`` overflows at a small temperature. Rows and
    columns where ``mask`` is False (padding blocks) are matched with themselves only, so
    every row and column keeps a finite entry (no ``-inf - -inf``) and the real blocks'
    matrix is normalised on its own.

    Shape:
        logits: [B, n, n], mask: [B, n] -> log of a (near) doubly stochastic [B, n, n]
    """
    n = logits.shape[-1]
    pair = mask[:, :, None] & mask[:, None, :]  # [B, n, n]
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    pad = ~mask[:, :, None] & eye  # [B, n, n]: a padding block with itself
    z = logits.masked_fill(~pair, float("-inf")).masked_fill(pad, 0.0)
    for _ in range(iters):
        z = z - torch.logsumexp(z, dim=2, keepdim=True)  # rows sum to 1
        z = z - torch.logsumexp(z, dim=1, keepdim=True)  # columns sum to 1
    return z


class SinkhornAttention(GlobalAttentionBase):
    r"""Block attention in which a learned soft sort chooses which block each block reads.

    Sparse Sinkhorn attention (Tay, Bahri, Yang, Metzler, Juan, ICML 2020), made for point
    sets: a sequence's blocks have no meaning on points, so each cloud is ordered along a
    space-filling curve (:func:`~pcattn.ops.serialize`, Hilbert by default: a block is a
    compact patch of space, and the order follows a permutation of the points) and cut
    into blocks of ``P`` nodes (:func:`~pcattn.ops.patches`; the last block of a cloud is
    shorter). With block embeddings :math:`e_a` (the mean of the block's ``x``) a bilinear
    sorting network scores block pairs (the paper's MLP outputs a fixed number of blocks;
    clouds differ in size) and Sinkhorn's normalisation (in log space, :func:`log_sinkhorn`)
    turns the scores into a soft permutation ``S`` of the cloud's blocks:

    .. math::
        R_{ab} = \frac{(W_a e_a)\cdot(W_b e_b)}{\sqrt{C}}, \qquad
        S = \mathrm{Sinkhorn}_L(R / \tau)

    Slot ``p`` of the block sorted to ``a`` is :math:`\tilde k_{ap} = \sum_b S_{ab}
    m_{bp} k_{bp} / \mu_{ap}` (likewise :math:`\tilde v`), :math:`m_{bp}` marking real
    slots and :math:`\mu_{ap} = \sum_b S_{ab} m_{bp}`. Each query ``i`` of block ``a``
    attends, under one softmax, to its own block's keys and to the sorted block's slots
    (the paper's local + sorted attention), the latter with bias :math:`\log \mu_{ap}`:

    .. math::
        y_i = W_o \big\Vert_h \operatorname{softmax}\Big(\Big[\frac{q_i \cdot k_{aj}}
        {\sqrt D}\Big]_{j},\ \Big[\frac{q_i \cdot \tilde k_{ap}}{\sqrt D}
        + \log\mu_{ap}\Big]_{p}\Big) [v_{a\cdot};\ \tilde v_{a\cdot}]

    No Gumbel noise is added, so training and eval compute the same function. Cost per
    cloud of ``N`` nodes and ``n = N / P`` blocks: O(N P C) attention plus O(n^2 P C) for
    the sort. Equivariant to a permutation of the points (up to points that share a
    position on the curve's finest grid).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        block_size: ``P``.
        temperature: ``tau`` of the sort (the paper: 0.75); any value > 0, 0.1 included.
        sinkhorn_iters: ``L``.
        order: the curve (``"hilbert"``, ``"z"``, ``"hilbert-trans"``, ``"z-trans"``).
        bias: biases in the projections.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]`` added to ``x`` on entry.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud), pos: [M, 3] (required) -> [M, C];
        with ``return_attention=True`` also a ``global`` :class:`AttentionMap`: weights
        [B, H, N_max, N_max], the weight of node ``j`` in query ``i``'s output (own-block
        weights plus each sorted slot's weight shared out by ``S``; rows sum to 1), and the
        mask [B, N_max]. :meth:`sort_matrix` gives ``S``.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, block_size: int = 32, temperature: float = 0.75,
                 sinkhorn_iters: int = 8, order: str = "hilbert", bias: bool = True,
                 pos_encoding: Callable | None = None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, bias=bias,
                         pos_encoding=pos_encoding)
        name = type(self).__name__
        self.block_size = check_int(name, "block_size", block_size)
        self.sinkhorn_iters = check_int(name, "sinkhorn_iters", sinkhorn_iters)
        if not temperature > 0:
            raise ValueError(f"{name}: temperature must be > 0, got {temperature}")
        if order not in ORDERS:
            raise ValueError(f"{name}: order must be one of {list(ORDERS)}, got {order!r}")
        self.temperature, self.order = float(temperature), order
        self.lin_sort = nn.Linear(self.in_channels, 2 * self.out_channels, bias=bias)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        x, batch = self._inputs(x, batch, pos, pos_needed_for=_WHY_POS)
        m = x.shape[0]
        h, c = self.heads, self.out_channels
        blocks, valid, s = self._sort(x, pos, batch)  # [B, n, P], [B, n, P], [B, n, n]
        live = valid.to(x.dtype)  # [B, n, P]
        qkv = self.lin_qkv(x)[blocks.clamp(min=0)] * live[..., None]  # [B, n, P, 3C]
        q, k, v = qkv.unflatten(-1, (3, h, c // h)).unbind(-3)  # [B, n, P, H, D] each
        mass = torch.einsum("bac,bcp->bap", s, live)  # [B, n, P]: mu
        k_s = torch.einsum("bac,bcphd->baphd", s, k) / mass.clamp_min(1e-30)[..., None, None]
        v_s = torch.einsum("bac,bcphd->baphd", s, v) / mass.clamp_min(1e-30)[..., None, None]
        keys, values = torch.cat([k, k_s], 2), torch.cat([v, v_s], 2)  # [B, n, 2P, H, D]
        bias = torch.cat([live, mass], 2)  # [B, n, 2P]
        bias = torch.where(bias > 0, bias.clamp_min(1e-30).log(), float("-inf"))  # log mu
        logits = torch.einsum("baphd,baqhd->bahpq", q, keys) * (c // h) ** -0.5
        logits = logits + bias[:, :, None, None, :]  # [B, n, H, P, 2P]
        allowed = bias > float("-inf")  # [B, n, 2P]
        empty = ~allowed.any(-1, keepdim=True)  # padding blocks: no empty softmax
        logits = logits.masked_fill(empty[:, :, None, None, :], 0.0)
        weight = torch.softmax(logits, dim=-1)  # [B, n, H, P, 2P]
        out = torch.einsum("bahpq,baqhd->baphd", weight, values)  # [B, n, P, H, D]
        rows = blocks[valid]  # [M]: node of each real slot
        y = out.new_zeros(m, h, c // h).index_copy(0, rows, out[valid])  # [M, H, D]
        y = self._output(y)  # [M, C]
        if not return_attention:
            return y
        return y, _per_node_map(weight, s, mass, blocks, valid, batch)

    def sort_matrix(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor
                    ) -> tuple[Tensor, Tensor]:
        """The blocks (node indices, ``-1`` padded) and the soft sort ``S`` of each cloud.

        Shape:
            x: [M, C_in], pos: [M, 3] -> blocks [B, n, P], S [B, n, n]
        """
        x, batch = self._inputs(x, batch, pos, pos_needed_for=_WHY_POS)  # [M, C_in], [M]
        blocks, _, s = self._sort(x, pos, batch)
        return blocks, s

    def _sort(self, x: Tensor, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Blocks of the curve order ``[B, n, P]`` (-1 padded), their real slots, and ``S``."""
        order = serialize(pos.detach(), batch, orders=self.order).order[0]  # [M]
        idx, _ = patches(order, batch, self.block_size)  # [n_all, P]
        blocks, block_mask = unpack(idx, batch[idx[:, 0]], fill_value=-1,
                                    num_clouds=int(batch[-1]) + 1)  # [B, n, P], [B, n]
        valid = blocks >= 0  # [B, n, P]
        live = valid.to(x.dtype)[..., None]  # [B, n, P, 1]
        e = (x[blocks.clamp(min=0)] * live).sum(2) / live.sum(2).clamp(min=1)  # [B, n, C_in]
        a, b = self.lin_sort(e).chunk(2, -1)  # [B, n, C] each
        r = a @ b.transpose(1, 2) * self.out_channels ** -0.5  # [B, n, n]
        s = log_sinkhorn(r / self.temperature, block_mask, self.sinkhorn_iters).exp()
        return blocks, valid, s * (block_mask[:, :, None] & block_mask[:, None, :])


def _per_node_map(weight: Tensor, s: Tensor, mass: Tensor, blocks: Tensor, valid: Tensor,
                  batch: Tensor) -> AttentionMap:
    """Each node's weight in each query's output, by position within the cloud.

    Shape:
        weight: [B, n, H, P, 2P], s: [B, n, n], mass: [B, n, P], blocks: [B, n, P]
        -> a global map [B, H, N, N]
    """
    b, nb, h, p, _ = weight.shape
    own, sorted_ = weight[..., :p], weight[..., p:]  # [B, n, H, P, P] each
    share = s[:, :, None, :, None] * valid[:, None, :, None, :] / mass.clamp_min(1e-30)[
        :, :, None, None, :]  # [B, a, 1, c, P]: slot p of block c in a's sorted slot p
    w = torch.einsum("bahpq,bacq->bahpcq", sorted_, share[:, :, 0])  # [B, a, H, P, c, P]
    diag = torch.arange(nb, device=w.device)
    w[:, diag, :, :, diag, :] += own.permute(1, 0, 2, 3, 4)  # own block: [n, B, H, P, P]
    counts, ptr = counts_and_ptr(batch, b)
    n_max = int(counts.max())
    local = torch.where(valid, blocks - ptr[:-1, None, None], 0).view(b, nb * p)  # [B, nP]
    flat = valid.view(b, nb * p)  # [B, nP]
    w = w.permute(0, 1, 3, 2, 4, 5).reshape(b, nb * p, h, nb * p).permute(0, 2, 1, 3)
    out = w.new_zeros(b, h, n_max, n_max)
    for cloud in range(b):  # scatter the real slots to their positions in the cloud
        pos_in = local[cloud][flat[cloud]]  # [N_b]
        out[cloud][:, pos_in[:, None], pos_in[None, :]] = w[cloud][:, flat[cloud]][
            :, :, flat[cloud]]  # [H, N_b, N_b]
    mask = torch.arange(n_max, device=w.device)[None, :] < counts[:, None]  # [B, N]
    return AttentionMap("global", out, mask=mask)
