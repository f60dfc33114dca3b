"""What every model reads from a batch: node features, the batch vector, the cloud count."""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.checks import may_read_values


def batch_of(data) -> Tensor:
    """``data.batch [M]``, or zeros for a single ``Data`` cloud."""
    batch = getattr(data, "batch", None)
    if batch is None:
        return torch.zeros(data.pos.shape[0], dtype=torch.long, device=data.pos.device)
    return batch


def num_clouds(data) -> int:
    """Number of clouds ``B`` in ``data`` (from its batch vector when it has no
    ``num_graphs``; 1 for a single ``Data``)."""
    if hasattr(data, "num_graphs"):
        return int(data.num_graphs)
    if getattr(data, "batch", None) is None:
        return 1 if data.pos.shape[0] else 0
    from pcattn.ops.batching import batch_size

    return batch_size(data.batch)


def equal_clouds(data) -> int | None:
    """``B`` (:func:`num_clouds`) while ``torch.compile`` traces a model or on ``meta``
    tensors; ``None`` in eager mode.

    There a model takes its batch to be ``B`` clouds of equal size (as a loader of
    ``num_points`` clouds makes it) and passes ``equal_clouds=B`` to its sampling and
    neighbour searches: their sizes come from the shapes, so the graph holds no host
    synchronisation (and ``meta`` tensors, which hold no values, give the output shapes).
    A batch of clouds of other sizes fails an assertion in the graph. In eager mode the
    clouds may have any sizes, read from ``batch``.
    """
    if torch.compiler.is_compiling() or data.pos.device.type == "meta":
        return num_clouds(data)
    return None


def point_features(data, feature_channels: int) -> Tensor:
    """``[pos | x]``: xyz then the extra channels of ``data.x``, checked against the config.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None -> [M, 3 + F]
    """
    x = getattr(data, "x", None)
    got = 0 if x is None else (x.shape[1] if x.dim() == 2 else 1)
    if got != feature_channels:
        raise ValueError(f"the model expects {feature_channels} extra feature channels in "
                         f"data.x, got {got}; set model.feature_channels={got} to match the "
                         "data")
    return data.pos if x is None else torch.cat([data.pos, x.reshape(x.shape[0], -1)], -1)


def category_of(data, num_categories: int) -> Tensor:
    """``data.category [B]`` for part segmentation, with a clear error when missing or out
    of range."""
    category = getattr(data, "category", None)
    if category is None:
        raise ValueError(f"this model was built with num_categories={num_categories} and needs "
                         "data.category [B] (the object category of each cloud, as "
                         "ShapeNetPart and synthetic_parts give); set model.num_categories=0 "
                         "for data without categories")
    category = category.reshape(-1).long()
    if category.numel() and may_read_values(category) and int(category.max()) >= num_categories:
        raise ValueError(f"data.category holds {int(category.max())} but the model was built "
                         f"with num_categories={num_categories}; set model.num_categories")
    return category
