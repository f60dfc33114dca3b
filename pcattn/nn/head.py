"""Prediction heads on top of a backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.checks import (
    check_batch_rows,
    check_features,
    check_int,
    check_ints,
    check_tensor,
)
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import check_batch


class ClassificationHead(nn.Module):
    """MLP from a pooled cloud feature to class logits, with dropout.

    Args:
        in_channels: pooled feature size ``C``.
        num_classes: number of classes.
        hidden_channels: widths of the hidden layers.
        dropout: dropout before each hidden linear layer's successor.

    Shape:
        x: [B, C] -> [B, num_classes]; ``pre_logits=True`` gives the last hidden [B, C_h].
    """

    def __init__(self, in_channels: int, num_classes: int, *,
                 hidden_channels: tuple[int, ...] = (256,), dropout: float = 0.5) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        num_classes = check_int(name, "num_classes", num_classes)
        hidden_channels = check_ints(name, "hidden_channels", hidden_channels)
        self.hidden = _hidden_layers(in_channels, hidden_channels, dropout)
        self.fc = nn.Linear(hidden_channels[-1] if hidden_channels else in_channels, num_classes)

    def reset_parameters(self) -> None:
        """Default inits of the layers."""
        reset_children(self)

    def forward(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        check_tensor(type(self).__name__, "x", x, ("B", self.in_channels),
                     note=f"in_channels={self.in_channels}")
        h = self.hidden(x)  # [B, C_h]
        return h if pre_logits else self.fc(h)  # [B, num_classes]


class SegmentationHead(nn.Module):
    """Per-point MLP from node features to part (or semantic) logits.

    With ``num_categories`` the one-hot object category of each cloud is concatenated to
    every node's features first, as PointNet/PointNet++ do on ShapeNetPart (the category is
    known at test time there and narrows the parts to predict).

    Args:
        in_channels: node feature size ``C``.
        num_classes: number of part/semantic classes.
        num_categories: number of object categories (``None``: no category input).
        hidden_channels: widths of the hidden layers (``Linear, LayerNorm, ReLU, Dropout``).
        dropout: dropout after each hidden layer.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud), category: [B] -> [M, num_classes];
        ``pre_logits=True`` gives the last hidden [M, C_h].
    """

    def __init__(self, in_channels: int, num_classes: int, *,
                 num_categories: int | None = None,
                 hidden_channels: tuple[int, ...] = (128,), dropout: float = 0.5) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        num_classes = check_int(name, "num_classes", num_classes)
        num_categories = check_int(name, "num_categories", num_categories, optional=True)
        hidden_channels = check_ints(name, "hidden_channels", hidden_channels)
        self.num_categories = num_categories
        c = in_channels + (num_categories or 0)
        self.hidden = _hidden_layers(c, hidden_channels, dropout)
        self.fc = nn.Linear(hidden_channels[-1] if hidden_channels else c, num_classes)

    def reset_parameters(self) -> None:
        """Default inits of the layers."""
        reset_children(self)

    def forward(self, x: Tensor, batch: Tensor | None = None, *,
                category: Tensor | None = None, pre_logits: bool = False) -> Tensor:
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        if self.num_categories:
            if category is None:
                raise ValueError(f"{name}: this head was built with num_categories="
                                 f"{self.num_categories}; pass category [B]")
            batch = check_batch(batch, x.shape[0], x.device)
            check_tensor(name, "category", category, ("B",), dtype="index")
            one_hot = F.one_hot(category.long(), self.num_categories).to(x.dtype)  # [B, K_c]
            x = torch.cat([x, one_hot[batch]], dim=-1)  # [M, C + K_c]
        elif category is not None:
            raise ValueError(f"{name}: category given but the head was built without "
                             "num_categories")
        h = self.hidden(x)  # [M, C_h]
        return h if pre_logits else self.fc(h)  # [M, num_classes]


def _hidden_layers(in_channels: int, hidden_channels: tuple[int, ...], dropout: float
                   ) -> nn.Sequential:
    """``Linear -> LayerNorm -> ReLU -> Dropout`` for each hidden width."""
    layers: list[nn.Module] = []
    c = in_channels
    for h in hidden_channels:
        layers += [nn.Linear(c, h), nn.LayerNorm(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        c = h
    return nn.Sequential(*layers)
