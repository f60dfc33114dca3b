"""Softmaxes over the structures of a packed batch: ``-1``-padded neighbourhoods and clouds."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.batching import batch_size


def masked_softmax(logits: Tensor, valid: Tensor) -> Tensor:
    """Softmax over dim 1 that gives exactly zero weight (and gradient) where ``~valid``.

    A row with no valid entry gets all-zero weights instead of NaN. No value is read back
    (no host synchronisation, no graph break under ``torch.compile``): masked entries get
    the dtype's lowest finite logit, so an all-masked row is finite before it is zeroed.

    Shape:
        logits: [M, K, *], valid: [M, K] -> [M, K, *]
    """
    masked = ~valid.reshape(valid.shape + (1,) * (logits.dim() - 2))  # [M, K, 1...]
    weight = torch.softmax(logits.masked_fill(masked, torch.finfo(logits.dtype).min), dim=1)
    return weight.masked_fill(masked, 0.0)


def segment_softmax(logits: Tensor, batch: Tensor, num_clouds: int | None = None) -> Tensor:
    """Softmax over the nodes of each cloud, separately for every trailing entry.

    Shape:
        logits: [M, *], batch: [M] (sorted) -> [M, *]
    """
    b = batch_size(batch) if num_clouds is None else num_clouds
    index = batch.view((-1,) + (1,) * (logits.dim() - 1)).expand_as(logits)  # [M, *]
    peak = logits.new_full((b,) + tuple(logits.shape[1:]), float("-inf"))
    peak = peak.scatter_reduce(0, index, logits.detach(), reduce="amax")  # [B, *]
    e = (logits - peak[batch]).exp()  # [M, *]
    total = torch.zeros_like(peak).index_add_(0, batch, e)  # [B, *]
    return e / total[batch]  # [M, *]
