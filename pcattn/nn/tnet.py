"""Spatial transformer network (PointNet's T-Net): one learned F x F transform per cloud."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.nn.checks import check_batch_rows, check_features, check_int, check_ints
from pcattn.nn.mlp import mlp
from pcattn.nn.pool import global_max_pool
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import batch_size, check_batch


class TNet(nn.Module):
    r"""Predict an ``F x F`` transform per cloud, the identity at initialisation.

    From "PointNet: Deep Learning on Point Sets for 3D Classification and Segmentation"
    (Qi, Su, Mo, Guibas, CVPR 2017): a shared per-point MLP, a max pool over the nodes of
    each cloud and an MLP regress the matrix ``A_b``, which is then applied to every node
    of the cloud (:func:`apply_transform`, ``y_i = x_i A_{b(i)}``):

    .. math::
        A_b = I + \operatorname{reshape}_{F \times F}\Big(\operatorname{MLP}_g\big(
              \max_{i \in b} \operatorname{MLP}_p(x_i)\big)\Big)

    The last linear layer starts at zero weight and bias (as the original TensorFlow
    code), so ``A = I`` for any input at initialisation and training starts from the
    untransformed cloud. For a large ``F`` (PointNet's 64 x 64 feature transform) add
    :func:`orthogonality_loss` to the training loss.

    Args:
        in_channels: size ``C_in`` of the per-node features the T-Net reads.
        dim: size ``F`` of the transform (default ``C_in``: 3 for xyz).
        point_channels: widths of the per-point MLP (PointNet: 64, 128, 1024).
        global_channels: widths of the MLP after pooling (PointNet: 512, 256).

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [B, F, F]
    """

    def __init__(
        self, in_channels: int, *, dim: int | None = None,
        point_channels: tuple[int, ...] = (64, 128, 1024),
        global_channels: tuple[int, ...] = (512, 256),
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        dim = check_int(name, "dim", dim, optional=True)
        point_channels = check_ints(name, "point_channels", point_channels)
        global_channels = check_ints(name, "global_channels", global_channels)
        if not point_channels or not global_channels:
            raise ValueError(f"{name}: point_channels and global_channels need one width "
                             f"each at least, got {point_channels} and {global_channels}")
        self.in_channels, self.dim = in_channels, dim or in_channels
        self.point_mlp = mlp([in_channels, *point_channels], last_act=True)
        self.global_mlp = mlp([point_channels[-1], *global_channels], last_act=True)
        self.fc = nn.Linear(global_channels[-1], self.dim * self.dim)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("identity", torch.eye(self.dim), persistent=False)

    def reset_parameters(self) -> None:
        """Default inits of the MLPs; the last layer at zero, so ``A = I`` again."""
        reset_children(self)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor, batch: Tensor | None = None, *,
                num_clouds: int | None = None) -> Tensor:
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        batch = check_batch(batch, x.shape[0], x.device)
        b = batch_size(batch) if num_clouds is None else num_clouds
        h = global_max_pool(self.point_mlp(x), batch, num_clouds=b)  # [B, C_p]
        delta = self.fc(self.global_mlp(h)).view(b, self.dim, self.dim)  # [B, F, F]
        return self.identity.to(delta.dtype) + delta  # [B, F, F]


def apply_transform(x: Tensor, transform: Tensor, batch: Tensor | None = None) -> Tensor:
    """Apply each cloud's transform to its nodes: ``y_i = x_i A_{b(i)}`` (row vectors).

    Shape:
        x: [M, F], transform: [B, F, F], batch: [M] -> [M, F]
    """
    batch = check_batch(batch, x.shape[0], x.device)
    return torch.einsum("mf,mfg->mg", x, transform[batch])  # [M, F]


def orthogonality_loss(transform: Tensor) -> Tensor:
    r"""PointNet's regulariser ``||I - A A^T||_F^2``, averaged over the clouds.

    Shape:
        transform: [B, F, F] -> []
    """
    eye = torch.eye(transform.shape[-1], dtype=transform.dtype, device=transform.device)
    diff = eye - transform @ transform.transpose(-1, -2)  # [B, F, F]
    return (diff * diff).sum(dim=(-1, -2)).mean()
