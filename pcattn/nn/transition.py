"""Transition down: farthest point sampling, kNN grouping and local max pooling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.nn.mlp import mlp
from pcattn.ops.gather import gather
from pcattn.ops.knn import knn
from pcattn.ops.sampling import farthest_point_sample


class TransitionDown(nn.Module):
    r"""Downsample a cloud by ``ratio`` (Point Transformer's transition down).

    Centres ``S`` are chosen by farthest point sampling; each centre gathers its ``k``
    nearest input points and max-pools ``MLP([x_j, p_j - p_i])`` over them:

    .. math:: y_i = \max_{j \in kNN(i)} \mathrm{MLP}([x_j \,\|\, p_j - p_i])

    Args:
        in_channels: ``C_in``.
        out_channels: ``C``.
        ratio: fraction of each cloud kept.
        k: neighbours pooled per centre.

    Shape:
        x: [M, C_in], pos: [M, 3], batch: [M]
        -> x: [S, C], pos: [S, 3], batch: [S], sampled index into the input: [S]
    """

    def __init__(self, in_channels: int, out_channels: int, *, ratio: float = 0.25,
                 k: int = 16) -> None:
        super().__init__()
        self.ratio, self.k = ratio, k
        self.mlp = mlp([in_channels + 3, out_channels, out_channels], last_act=True)

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sample = farthest_point_sample(pos, batch, ratio=self.ratio)  # [S]
        pos_s, batch_s = pos[sample], batch[sample]  # [S, 3], [S]
        idx = knn(pos, self.k, batch, query=pos_s, query_batch=batch_s)  # [S, K]
        rel = gather(pos, idx) - pos_s[:, None, :]  # [S, K, 3]
        h = self.mlp(torch.cat([gather(x, idx), rel], dim=-1))  # [S, K, C]
        h = h.masked_fill((idx < 0)[..., None], float("-inf"))
        return h.max(dim=1).values, pos_s, batch_s, sample  # [S, C]

