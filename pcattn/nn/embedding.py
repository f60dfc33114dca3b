"""Embeddings: per-node (points or graph nodes) and PCT's neighbour embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.nn.checks import (
    check_batch_rows,
    check_features,
    check_int,
    check_positions,
    check_tensor,
)
from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import check_batch
from pcattn.ops.checks import may_read_values
from pcattn.ops.gather import gather
from pcattn.ops.knn import knn
from pcattn.ops.sampling import farthest_point_sample


class PointEmbedding(nn.Module):
    """Shared MLP applied to each node's input features (PointNet's per-point MLP).

    Works on any node features, with no geometry: for a graph ``Data(x, edge_index)``
    use ``PointEmbedding(F, C)(data.x)``; the edges are for the blocks that follow.
    Integer features (labels, counts) are cast to the weights' dtype, and a 1-D ``x [M]``
    is read as one feature per node.

    Args:
        in_channels: input size ``F`` (3 for xyz, 6 for xyz + normals, ...).
        out_channels: embedding size ``C``.
        hidden_channels: width of the hidden layer (default ``C``).

    Shape:
        x: [M, F] or [M] -> [M, C]
    """

    def __init__(self, in_channels: int, out_channels: int, *,
                 hidden_channels: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        hidden = check_int(name, "hidden_channels", hidden_channels, optional=True)
        hidden = hidden or out_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mlp = mlp([in_channels, hidden, out_channels], last_act=True)

    def reset_parameters(self) -> None:
        """Default inits of the MLP."""
        reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.dim() == 1:
            x = x[:, None]  # [M, 1]
        check_tensor(type(self).__name__, "x", x, ("M", self.in_channels), dtype="any",
                     note=f"in_channels={self.in_channels}")
        if not x.is_floating_point():
            x = x.to(self.mlp[0].weight.dtype)
        return self.mlp(x)


class NeighborEmbedding(nn.Module):
    r"""PCT's neighbour embedding: a point embedding, then two sample-and-group stages.

    From "PCT: Point Cloud Transformer" (Guo et al., 2021), ``Neighbor_Embedding``: an
    embedding ``F -> H`` (two LBR layers), then twice: farthest point sampling of centres
    ``i``, the ``k`` nearest points ``j`` of each centre, and

    .. math:: y_i = \max_{j \in kNN(i)} \mathrm{LBR}^2\big([x_j - x_i \,\|\, x_i]\big)

    with widths ``2H -> C/2`` then ``C -> C`` (PCT: ``H=64``, ``C=256``, 1024 -> 512 ->
    256 points, ``k=32``). ``-1`` neighbours of small clouds are left out of the max.
    LBR is ``Linear -> LayerNorm -> ReLU`` (see ``mlp``), not BatchNorm.

    Cost: the first ``Linear`` of each stage is split over the concatenation,
    ``W [x_j - x_i || x_i] = W_n x_j + (W_c - W_n) x_i``, so it runs once per point and once
    per centre instead of once per ``(centre, neighbour)`` pair (half the stage's matrix
    products), and the last ReLU follows the max (``max_j relu(h_j) = relu(max_j h_j)``).

    Args:
        in_channels: input feature size ``F`` (3 when the features are xyz).
        out_channels: ``C`` (even).
        hidden_channels: ``H``, width of the first embedding.
        ratios: fraction of each cloud kept by each of the two stages, or
        num_samples: points kept per cloud by each stage (overrides ``ratios``).
        k: neighbours grouped per centre.

    ``forward(..., equal_clouds=B)``: the batch is ``B`` clouds of equal size, so the
    sampling and the search take their sizes from the shapes (what ``torch.compile``
    traces; see :func:`pcattn.ops.farthest_point_sample`).

    Shape:
        x: [M, F] (``None``: ``pos``), pos: [M, 3], batch: [M]
        -> x: [S, C], pos: [S, 3], batch: [S], index of the kept points in the input: [S]
    """

    def __init__(self, in_channels: int, out_channels: int = 256, *,
                 hidden_channels: int = 64, ratios: tuple[float, float] = (0.5, 0.5),
                 num_samples: tuple[int, int] | None = None, k: int = 32) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        hidden_channels = check_int(name, "hidden_channels", hidden_channels)
        k = check_int(name, "k", k)
        if out_channels % 2:
            raise ValueError(f"{name}: out_channels must be even, got {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.ratios, self.num_samples, self.k = ratios, num_samples, k
        mid = out_channels // 2
        self.embed = mlp([in_channels, hidden_channels, hidden_channels], last_act=True)
        self.local0 = mlp([2 * hidden_channels, mid, mid], last_act=True)
        self.local1 = mlp([2 * mid, out_channels, out_channels], last_act=True)

    def reset_parameters(self) -> None:
        """Default inits of the MLPs."""
        reset_children(self)

    def forward(self, x: Tensor | None, pos: Tensor, batch: Tensor | None = None, *,
                equal_clouds: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        name = type(self).__name__
        if x is None:
            check_tensor(name, "pos", pos, ("M", 3))
            if self.in_channels != 3:
                raise ValueError(f"{name}: x is None, so pos [M, 3] is embedded, but "
                                 f"in_channels={self.in_channels}; pass x [M, "
                                 f"{self.in_channels}]")
        else:
            check_positions(name, pos, check_features(name, x, self.in_channels), like=x)
        check_batch_rows(name, batch, pos.shape[0], of="pos")
        batch = check_batch(batch, pos.shape[0], pos.device)
        h = self.embed(pos if x is None else x)  # [M, H]
        sample = torch.arange(pos.shape[0], device=pos.device)  # [M]
        for stage, local in enumerate((self.local0, self.local1)):
            h, keep = self._sample_and_group(h, pos, batch, local, stage,
                                             equal_clouds)  # [S, C_s]
            pos, batch, sample = pos[keep], batch[keep], sample[keep]
        return h, pos, batch, sample

    def _sample_and_group(self, x: Tensor, pos: Tensor, batch: Tensor, local: nn.Module,
                          stage: int, equal_clouds: int | None) -> tuple[Tensor, Tensor]:
        if self.num_samples is not None:
            keep = farthest_point_sample(pos, batch, num=self.num_samples[stage],
                                         equal_clouds=equal_clouds)  # [S]
        elif self.ratios[stage] >= 1:  # every point is a centre (PCT's segmentation)
            keep = torch.arange(pos.shape[0], device=pos.device)  # [M]
        else:
            keep = farthest_point_sample(pos, batch, ratio=self.ratios[stage],
                                         equal_clouds=equal_clouds)  # [S]
        idx = knn(pos, self.k, batch, query=pos[keep], query_batch=batch[keep],
                  equal_clouds=equal_clouds)  # [S, K]
        # The first Linear of LBR^2 on [x_j - x_i || x_i] is W_n x_j + (W_c - W_n) x_i + b with
        # W = [W_n | W_c]: it acts per point and per centre, and only its sum is [S, K, C'].
        first, c = local[0], x.shape[1]
        w_n, w_c = first.weight[:, :c], first.weight[:, c:]
        h = gather(x @ w_n.T, idx)  # [S, K, C']: W_n x_j (zero at -1)
        h += torch.addmm(first.bias, x[keep], (w_c - w_n).T)[:, None]  # + (W_c - W_n) x_i + b
        h = local[1:-1](h)  # LayerNorm, ReLU, Linear, LayerNorm; the last ReLU after the max
        # clouds smaller than k: their -1 neighbours take no part (no read to compile)
        if not may_read_values(idx) or bool((idx < 0).any()):
            h = h.masked_fill((idx < 0)[..., None], float("-inf"))
        return torch.relu(h.max(dim=1).values), keep  # [S, C'], [S]
