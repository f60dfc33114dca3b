"""Channel attention over point features, per cloud: squeeze-and-excitation and ECA."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_batch_rows, check_features, check_int
from pcattn.nn.pool import global_max_pool, global_mean_pool
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import batch_size, check_batch

_POOLS = {"mean": global_mean_pool, "max": global_max_pool}


def _squeeze(block: nn.Module, x: Tensor, batch: Tensor | None, num_clouds: int | None
             ) -> tuple[Tensor, Tensor]:
    name = type(block).__name__
    check_batch_rows(name, batch, check_features(name, x, block.in_channels))
    batch = check_batch(batch, x.shape[0], x.device)
    b = batch_size(batch) if num_clouds is None else num_clouds
    return _POOLS[block.pool](x, batch, num_clouds=b), batch  # [B, C], [M]


class SqueezeExcitation(nn.Module):
    r"""Squeeze-and-excitation gate on the channels of each cloud.

    From "Squeeze-and-Excitation Networks" (Hu, Shen, Sun, CVPR 2018), with the spatial
    average replaced by a pool over the nodes of each cloud:

    .. math::
        z_b = \operatorname{pool}_{i \in b}\, x_i, \qquad
        s_b = \sigma\big(W_2 \operatorname{ReLU}(W_1 z_b + b_1) + b_2\big), \qquad
        y_i = x_i \odot s_{b(i)}

    with ``W_1: C -> C / reduction`` and ``W_2: C / reduction -> C``.

    Args:
        in_channels: feature size ``C`` (input and output).
        reduction: bottleneck ratio ``r``.
        pool: ``"mean"`` (SENet's global average) or ``"max"`` (PointNet's symmetric
            function).

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud) -> [M, C]; with
        ``return_attention=True`` also a ``channel`` :class:`AttentionMap`: the gates
        [B, C] (in ``(0, 1)``).
    """

    def __init__(self, in_channels: int, *, reduction: int = 4, pool: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        channels = check_int(name, "in_channels", in_channels)
        reduction = check_int(name, "reduction", reduction)
        if pool not in _POOLS:
            raise ValueError(f"{name}: pool must be one of {sorted(_POOLS)}, got {pool!r}")
        self.in_channels = self.out_channels = channels
        self.pool = pool
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def reset_parameters(self) -> None:
        """Default inits of the layers."""
        reset_children(self)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, num_clouds: int | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        z, batch = _squeeze(self, x, batch, num_clouds)  # [B, C], [M]
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))  # [B, C]
        out = x * gate[batch]  # [M, C]
        return (out, AttentionMap("channel", gate)) if return_attention else out


class EfficientChannelAttention(nn.Module):
    r"""ECA gate: a 1-D convolution across the pooled channels of each cloud.

    From "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks"
    (Wang, Wu, Zhu, Li, Zuo, Hu, CVPR 2020). No dimensionality reduction; each channel's
    gate looks at its ``k`` neighbouring channels:

    .. math::
        z_b = \operatorname{pool}_{i \in b}\, x_i, \qquad
        s_b = \sigma\big(\operatorname{conv1d}_k(z_b)\big), \qquad
        y_i = x_i \odot s_{b(i)}, \qquad
        k = \Big|\frac{\log_2 C + \beta}{\gamma}\Big|_{\text{odd}}

    (zero padding at both ends of the channel axis, no bias, as in the paper's code).

    Args:
        in_channels: feature size ``C`` (input and output).
        kernel_size: ``k``; default from ``C`` by the formula above.
        gamma, beta: constants of the adaptive kernel size.
        pool: ``"mean"`` (the paper) or ``"max"``.

    Shape:
        x: [M, C], batch: [M] (``None``: one cloud) -> [M, C]; with
        ``return_attention=True`` also a ``channel`` :class:`AttentionMap`: the gates
        [B, C].
    """

    def __init__(self, in_channels: int, *, kernel_size: int | None = None, gamma: float = 2,
                 beta: float = 1, pool: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        channels = check_int(name, "in_channels", in_channels)
        kernel_size = check_int(name, "kernel_size", kernel_size, optional=True)
        if pool not in _POOLS:
            raise ValueError(f"{name}: pool must be one of {sorted(_POOLS)}, got {pool!r}")
        if kernel_size is None:
            t = int(abs((math.log2(channels) + beta) / gamma))
            kernel_size = t if t % 2 else t + 1
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be odd, got {kernel_size}")
        self.in_channels = self.out_channels = channels
        self.kernel_size, self.pool = kernel_size, pool
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def reset_parameters(self) -> None:
        """Default inits of the layers."""
        reset_children(self)

    def forward(self, x: Tensor, batch: Tensor | None = None, *, num_clouds: int | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        z, batch = _squeeze(self, x, batch, num_clouds)  # [B, C], [M]
        gate = torch.sigmoid(self.conv(z[:, None, :])[:, 0, :])  # [B, 1, C] -> [B, C]
        out = x * gate[batch]  # [M, C]
        return (out, AttentionMap("channel", gate)) if return_attention else out
