"""Global pooling of packed node features into one vector per cloud."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.nn.checks import check_batch_rows, check_features
from pcattn.ops.batching import batch_size, check_batch


def global_max_pool(x: Tensor, batch: Tensor | None = None, *,
                    num_clouds: int | None = None) -> Tensor:
    """Channel-wise max over the nodes of each cloud.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud) -> [B, C]
    """
    check_batch_rows("global_max_pool", batch, check_features("global_max_pool", x, None))
    batch = check_batch(batch, x.shape[0], x.device)
    b = batch_size(batch) if num_clouds is None else num_clouds
    out = x.new_full((b, x.shape[1]), float("-inf"))
    index = batch[:, None].expand_as(x)
    return out.scatter_reduce(0, index, x, reduce="amax", include_self=True)


def global_mean_pool(x: Tensor, batch: Tensor | None = None, *,
                     num_clouds: int | None = None) -> Tensor:
    """Channel-wise mean over the nodes of each cloud.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud) -> [B, C]
    """
    check_batch_rows("global_mean_pool", batch, check_features("global_mean_pool", x, None))
    batch = check_batch(batch, x.shape[0], x.device)
    b = batch_size(batch) if num_clouds is None else num_clouds
    out = x.new_zeros((b, x.shape[1])).index_add_(0, batch, x)
    # index_add_, not bincount: its size is b, not read from the ids (one graph compiled)
    count = batch.new_zeros(b).index_add_(0, batch, torch.ones_like(batch))
    count = count.clamp_min(1).to(x.dtype)
    return out / count[:, None]
