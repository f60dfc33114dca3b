"""Feature interpolation from one point set to another, per cloud."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.gather import gather
from pcattn.ops.knn import knn_with_distance


def interpolate(
    x: Tensor, pos: Tensor, pos_query: Tensor, batch: Tensor | None = None,
    batch_query: Tensor | None = None, *, k: int = 3, mode: str = "inverse_distance",
    sigma: float | Tensor = 0.1, eps: float = 1e-8,
) -> Tensor:
    """Interpolate features known at ``pos`` onto ``pos_query`` from the ``k`` nearest.

    ``mode="inverse_distance"`` (PointNet++ feature propagation):
    ``f(q) = sum_j w_j x_j / sum_j w_j`` with ``w_j = 1 / (||q - p_j||^2 + eps)``.
    ``mode="nadaraya_watson"`` (kernel regression with a Gaussian kernel):
    ``w_j = softmax_j(-||q - p_j||^2 / (2 sigma^2))``; ``sigma`` may be a learned tensor.

    Shape:
        x: [M, C], pos: [M, 3], pos_query: [M_q, 3], batch: [M], batch_query: [M_q]
        -> [M_q, C]
    """
    if mode not in ("inverse_distance", "nadaraya_watson"):
        raise ValueError(f"mode must be 'inverse_distance' or 'nadaraya_watson', got {mode!r}")
    if batch is not None and batch_query is None:
        if pos_query is not pos:
            raise ValueError("batch is given but batch_query is not: pass the cloud id of each "
                             "query point too (batch_query [M_q])")
        batch_query = batch
    idx, _ = knn_with_distance(pos, k, batch, query=pos_query, query_batch=batch_query)
    valid = idx >= 0  # [M_q, K]
    diff = gather(pos, idx) - pos_query[:, None, :]  # [M_q, K, 3]; differentiable in pos
    d2 = (diff * diff).sum(-1)  # [M_q, K]
    if mode == "inverse_distance":
        w = (1.0 / (d2 + eps)) * valid
        w = w / w.sum(-1, keepdim=True).clamp_min(eps)  # [M_q, K]
    else:
        logits = (-d2 / (2 * sigma * sigma)).masked_fill(~valid, float("-inf"))
        w = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # [M_q, K]
    return (w[..., None] * gather(x, idx)).sum(1)  # [M_q, C]
