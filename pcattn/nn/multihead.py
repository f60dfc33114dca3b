"""Multi-head scaled dot-product attention of dense query and key sets, with a key mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def split_heads(t: Tensor, heads: int) -> Tensor:
    """``[B, L, C] -> [B, H, L, C / H]``."""
    b, n, c = t.shape
    return t.view(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(t: Tensor) -> Tensor:
    """``[B, H, L, D] -> [B, L, H D]``."""
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def attend(q: Tensor, k: Tensor, v: Tensor, key_bias: Tensor | None = None, *,
           weights: bool = False) -> tuple[Tensor, Tensor | None]:
    r"""``softmax(q k^T / sqrt(D) + bias) v`` for each cloud and head.

    ``key_bias`` is a boolean mask of the keys each cloud may read (``True``: a real key)
    or a float bias added to every query's logit of that key (``-inf`` masks). Without
    ``weights`` the call is one ``scaled_dot_product_attention`` with a ``[B, 1, 1, S]``
    mask (fused, no ``[L, S]`` matrix kept); with ``weights`` the softmax is explicit and
    returned, and multiplies ``v`` into the same output.

    Shape:
        q: [B, H, L, D], k, v: [B, H, S, D], key_bias: [B, S] -> out [B, H, L, D],
        weight [B, H, L, S] or ``None``
    """
    mask = None if key_bias is None else key_bias[:, None, None, :]  # [B, 1, 1, S]
    if not weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
    logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5  # [B, H, L, S]
    if mask is not None:
        logits = (logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                  else logits + mask)
    weight = torch.softmax(logits, dim=-1)  # [B, H, L, S]
    return weight @ v, weight
