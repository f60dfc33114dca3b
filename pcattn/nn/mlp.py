"""Small building pieces shared by blocks: a point-wise MLP."""

from __future__ import annotations

from torch import nn


def mlp(channels: list[int], *, norm: bool = True, last_act: bool = False) -> nn.Sequential:
    """``Linear -> [LayerNorm] -> ReLU`` per step; the last step is a bare ``Linear``.

    LayerNorm rather than BatchNorm: per-node statistics behave the same in train and
    eval mode, so a model is usable in eval mode from its first epochs (PyG's Point
    Transformer example collapses to one class there with BatchNorm).

    Shape:
        [*, channels[0]] -> [*, channels[-1]]
    """
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Linear(c_in, c_out))
        if i < len(channels) - 2 or last_act:
            if norm:
                layers.append(nn.LayerNorm(c_out))
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
