"""Per-node embedding of point (or graph node) features."""

from __future__ import annotations

from torch import Tensor, nn

from pcattn.nn.mlp import mlp


class PointEmbedding(nn.Module):
    """Shared MLP applied to each node's input features (PointNet's per-point MLP).

    Args:
        in_channels: input size ``F`` (3 for xyz, 6 for xyz + normals, ...).
        out_channels: embedding size ``C``.
        hidden_channels: width of the hidden layer (default ``C``).

    Shape:
        x: [M, F] -> [M, C]
    """

    def __init__(self, in_channels: int, out_channels: int, *,
                 hidden_channels: int | None = None) -> None:
        super().__init__()
        hidden = hidden_channels or out_channels
        self.mlp = mlp([in_channels, hidden, out_channels], last_act=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)
