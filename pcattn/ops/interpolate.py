"""Feature interpolation from one point set to another, per cloud."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.gather import gather
from pcattn.ops.knn import knn_with_distance

MODES = ("inverse_distance", "nadaraya_watson")


def interpolation_weights(
    pos: Tensor, batch: Tensor | None = None, *, query: Tensor,
    query_batch: Tensor | None = None, k: int = 3, mode: str = "inverse_distance",
    sigma: float | Tensor = 0.1, eps: float = 1e-8, equal_clouds: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest points of each query and their interpolation weights.

    ``mode="inverse_distance"`` (PointNet++ feature propagation):
    ``w_j = (1 / (||q - p_j||^2 + eps)) / sum_l (1 / (||q - p_l||^2 + eps))``.
    ``mode="nadaraya_watson"`` (kernel regression with a Gaussian kernel):
    ``w_j = softmax_j(-||q - p_j||^2 / (2 sigma^2))``; ``sigma`` may be a learned tensor.
    Each row sums to 1 over its valid neighbours; ``-1`` neighbours get weight 0.
    ``equal_clouds=B``: both sets are ``B`` clouds of equal size (see
    :func:`~pcattn.ops.knn`).

    Shape:
        pos: [M, 3], batch: [M], query: [M_q, 3], query_batch: [M_q]
        -> idx [M_q, K] (into ``pos``, ``-1`` padded), weight [M_q, K]
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch is not None and query_batch is None:
        if query is not pos:
            raise ValueError("batch is given but query_batch is not: pass the cloud id of each "
                             "query point too (query_batch [M_q])")
        query_batch = batch
    idx, _ = knn_with_distance(pos, k, batch, query=query, query_batch=query_batch,
                               equal_clouds=equal_clouds)
    valid = idx >= 0  # [M_q, K]
    diff = gather(pos, idx) - query[:, None, :]  # [M_q, K, 3]; differentiable in pos
    d2 = (diff * diff).sum(-1)  # [M_q, K]
    if mode == "inverse_distance":
        w = (1.0 / (d2 + eps)) * valid
        w = w / w.sum(-1, keepdim=True).clamp_min(eps)  # [M_q, K]
    else:
        logits = (-d2 / (2 * sigma * sigma)).masked_fill(~valid, float("-inf"))
        w = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # [M_q, K]
    return idx, w


def interpolate(
    x: Tensor, pos: Tensor, batch: Tensor | None = None, *, query: Tensor,
    query_batch: Tensor | None = None, k: int = 3, mode: str = "inverse_distance",
    sigma: float | Tensor = 0.1, eps: float = 1e-8,
) -> Tensor:
    """Interpolate features known at ``pos`` onto ``query`` from the ``k`` nearest.

    ``f(q) = sum_j w_j x_j`` with the weights of :func:`interpolation_weights`.

    Shape:
        x: [M, C], pos: [M, 3], batch: [M], query: [M_q, 3], query_batch: [M_q]
        -> [M_q, C]
    """
    idx, w = interpolation_weights(pos, batch, query=query, query_batch=query_batch, k=k,
                                   mode=mode, sigma=sigma, eps=eps)
    return (w[..., None] * gather(x, idx)).sum(1)  # [M_q, C]
