r"""The formulas of the attention blocks, written as plainly as the papers give them.

Each function takes a block (for its weights) and computes what the block computes, densely:
gather every neighbour, one softmax, one sum; no row chunks, no folded or split linear maps,
no fused kernels. They are slow and hold every ``[M, K, C]`` intermediate: they are here to
be read against the paper, and the tests run every block's fast path against them in float64
(outputs, and the gradients of the input and of every parameter).

Where a block's fast path differs from these lines:

- every local block (:class:`PointTransformerLayer`, :class:`GroupedVectorAttention`,
  :class:`LocalSelfAttention`) works on chunks of rows (``chunk_size``), each chunk gathering
  from the window of the node tables its clouds occupy, and recomputes a chunk in backward
  when the ``[M, K, C]`` intermediates would exceed ``recompute_above`` elements;
- :class:`PointTransformerLayer` folds ``pos_nn``'s last ``Linear`` into ``attn_nn``'s
  first (``W_a (q_i - k_j + W_d h_ij + b_d) = W_a q_i - W_a k_j + (W_a W_d) h_ij + W_a b_d``)
  when ``pos_nn`` ends and ``attn_nn`` starts with a ``Linear`` and the edges number at least
  ``C * C``;
- :class:`TransitionDown` applies its first ``Linear`` per point before gathering
  (``W [x_j | p_j - p_i] = W_x x_j + W_p p_j - W_p p_i``) and its last ReLU after the max;
- :class:`OffsetAttention` without ``return_attention`` never builds the ``[N, N]`` matrix:
  the column normalisation becomes a second softmax with the row log-sum-exp folded into the
  keys, one ``scaled_dot_product_attention`` call;
- a softmax is masked only where a neighbourhood is padded (``idx`` holds ``-1``).

Padding: ``idx`` rows padded with ``-1`` (clouds with fewer than ``K`` points) have no
weight; the formulas below gather row 0 there and mask it out of the softmax.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def neighbours(t: Tensor, idx: Tensor) -> Tensor:
    """``t[idx]``, with ``-1`` entries reading row 0 (their weights are zero).

    Shape:
        t: [M, *], idx: [M', K] -> [M', K, *]
    """
    return t[idx.clamp(min=0)]


def softmax_over_neighbours(logits: Tensor, idx: Tensor) -> Tensor:
    """Softmax over the ``K`` neighbours (dim 1), padded neighbours excluded.

    Shape:
        logits: [M, K, *], idx: [M, K] -> [M, K, *]
    """
    return torch.softmax(logits.masked_fill((idx < 0)[..., None], -math.inf), dim=1)


def point_transformer(layer, x: Tensor, pos: Tensor, idx: Tensor) -> Tensor:
    r"""Zhao et al., Point Transformer (ICCV 2021), eq. 3:

    .. math::
        y_i = \sum_j \operatorname{softmax}_j\big(\gamma(\varphi x_i - \psi x_j
              + \delta_{ij})\big) \odot (\alpha x_j + \delta_{ij}),
        \qquad \delta_{ij} = \theta(p_i - p_j)

    with ``phi, psi, alpha = lin_dst, lin_src, lin``, ``gamma = attn_nn``,
    ``theta = pos_nn``; the softmax is per channel (vector attention).
    """
    q, k, v = layer.lin_dst(x), layer.lin_src(x), layer.lin(x)  # [M, C] each
    delta = layer.pos_nn(pos[:, None, :] - neighbours(pos, idx))  # [M, K, C]
    w = softmax_over_neighbours(layer.attn_nn(q[:, None, :] - neighbours(k, idx) + delta), idx)
    return (w * (neighbours(v, idx) + delta)).sum(1)  # [M, C]


def grouped_vector_attention(layer, x: Tensor, pos: Tensor, idx: Tensor) -> Tensor:
    r"""Wu et al., Point Transformer V2 (NeurIPS 2022), grouped vector attention:

    .. math::
        r_{ij} = (\psi x_j - \varphi x_i) \odot \mu(p_j - p_i) + \theta(p_j - p_i), \quad
        w_{ij} = \operatorname{softmax}_j \omega(r_{ij}) \in \mathbb{R}^G, \quad
        y_i = \big\Vert_{g} \sum_j w_{ij,g}\, (\alpha x_j + \theta(p_j - p_i))_g

    (``mu = pos_mul_nn``, absent without the multiplier), one weight per group of channels.
    """
    valid = (idx >= 0)[..., None]
    rel = (neighbours(pos, idx) - pos[:, None, :]) * valid  # [M, K, 3]: p_j - p_i
    r = neighbours(layer.lin_k(x), idx) - layer.lin_q(x)[:, None, :]  # [M, K, C]
    if layer.pos_mul_nn is not None:
        r = r * layer.pos_mul_nn(rel)
    delta = layer.pos_nn(rel)  # [M, K, C]
    w = softmax_over_neighbours(layer.attn_nn(r + delta), idx)  # [M, K, G]
    value = neighbours(layer.lin_v(x), idx) + delta  # [M, K, C]
    m, k, c = value.shape
    g = w.shape[-1]
    return (w[..., None] * value.view(m, k, g, c // g)).sum(1).reshape(m, c)  # [M, C]


def local_self_attention(layer, x: Tensor, pos: Tensor, idx: Tensor) -> Tensor:
    r"""Multi-head scaled dot-product attention over each point's ``K`` neighbours, with a
    relative position term on keys and values:

    .. math::
        y_i = W_o \big\Vert_h \sum_j \operatorname{softmax}_j
              \frac{q_i^h \cdot (k_j + \delta_{ij})^h}{\sqrt d}\, (v_j + \delta_{ij})^h,
        \qquad \delta_{ij} = \theta(p_i - p_j)
    """
    valid = (idx >= 0)[..., None]
    delta = layer.pos_nn((pos[:, None, :] - neighbours(pos, idx)) * valid)  # [M, K, C]
    q = layer.lin_q(x)  # [M, C]
    k, v = neighbours(layer.lin_k(x), idx), neighbours(layer.lin_v(x), idx)  # [M, K, C]
    m, kk, c = delta.shape
    h = layer.heads
    d = c // h
    logits = (q.view(m, 1, h, d) * (k + delta).view(m, kk, h, d)).sum(-1) / math.sqrt(d)
    w = softmax_over_neighbours(logits, idx)  # [M, K, H]
    out = (w[..., None] * (v + delta).view(m, kk, h, d)).sum(1).reshape(m, c)  # [M, C]
    return layer.lin_out(out)


def transition_down(down, x: Tensor, pos: Tensor, sample: Tensor, idx: Tensor) -> Tensor:
    r"""Point Transformer's transition down for the sampled centres ``i`` (``sample``) and
    their neighbours ``j`` (``idx``): :math:`y_i = \max_j \mathrm{MLP}([x_j \Vert p_j - p_i])`.

    Shape:
        x: [M, C_in], pos: [M, 3], sample: [S], idx: [S, K] -> [S, C_out]
    """
    rel = neighbours(pos, idx) - pos[sample][:, None, :]  # [S, K, 3]
    h = down.mlp(torch.cat([neighbours(x, idx), rel], dim=-1))  # [S, K, C_out]
    return h.masked_fill((idx < 0)[..., None], -math.inf).max(dim=1).values


def offset_attention(layer, x: Tensor) -> Tensor:
    r"""Guo et al., PCT (2021), offset attention on one cloud ``x [N, C]``:

    .. math::
        A = \operatorname{softmax}_{\text{rows}}(Q K^\top), \quad
        \tilde A_{ij} = \frac{A_{ij}}{10^{-9} + \sum_i A_{ij}}, \quad
        x_r = \tilde A^\top V, \quad y = x + \mathrm{LBR}(x - x_r)

    (``Q, K, V = lin_q(x), lin_k(x), lin_v(x)``; PCT ties ``lin_q`` and ``lin_k``).
    """
    attn = torch.softmax(layer.lin_q(x) @ layer.lin_k(x).T, dim=-1)  # [N, N]
    attn = attn / (layer.eps + attn.sum(dim=0, keepdim=True))  # columns sum to 1
    return x + layer.lbr(x - attn.T @ layer.lin_v(x))  # [N, C]
