"""Prediction heads on top of a backbone."""

from __future__ import annotations

from torch import Tensor, nn


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
        layers: list[nn.Module] = []
        c = in_channels
        for h in hidden_channels:
            layers += [nn.Linear(c, h), nn.LayerNorm(h), nn.ReLU(inplace=True),
                       nn.Dropout(dropout)]
            c = h
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        h = self.hidden(x)  # [B, C_h]
        return h if pre_logits else self.fc(h)  # [B, num_classes]
