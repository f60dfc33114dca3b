"""Transitions between resolutions: down (FPS, kNN grouping, max pool) and up (interpolate
+ skip connection), as in Point Transformer."""

from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import (
    check_batch_rows,
    check_features,
    check_int,
    check_points,
    check_positions,
)
from pcattn.nn.chunking import chunked_rows
from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import check_batch, check_neighbors
from pcattn.ops.checks import may_read_values
from pcattn.ops.gather import gather, padded_rows
from pcattn.ops.interpolate import interpolation_weights
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

    ``forward(..., neighbors=idx)`` takes the centres' neighbourhoods from ``idx``, the ``k``
    nearest neighbours of every input node among the input nodes (``pcattn.ops.knn(pos, k,
    batch)``, as the stage before has for its attention), instead of searching again: the
    centres are input nodes, so their rows of ``idx`` are their neighbourhoods.

    ``forward(..., equal_clouds=B)``: the batch is ``B`` clouds of equal size, so the
    sampling and the search take their sizes from the shapes (what ``torch.compile``
    traces; see :func:`pcattn.ops.farthest_point_sample`).

    Shape:
        x: [M, C_in], pos: [M, 3], batch: [M] (``None``: one cloud), neighbors: [M, k]
        -> x: [S, C], pos: [S, 3], batch: [S], sampled index into the input: [S]
    """

    def __init__(self, in_channels: int, out_channels: int, *, ratio: float = 0.25,
                 k: int = 16) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        k = check_int(name, "k", k)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.ratio, self.k = ratio, k
        self.mlp = mlp([in_channels + 3, out_channels, out_channels], last_act=True)

    def reset_parameters(self) -> None:
        """Default inits of the MLP."""
        reset_children(self)

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None = None, *,
                neighbors: Tensor | None = None, equal_clouds: int | None = None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        name = type(self).__name__
        m = check_points(name, x, pos, batch, self.in_channels)
        if neighbors is not None:
            if tuple(neighbors.shape) != (m, self.k):
                raise ValueError(f"{name}: neighbors must be [{m}, {self.k}] (the k={self.k} "
                                 "nearest input nodes of every input node, pcattn.ops.knn(pos, "
                                 f"{self.k}, batch)), got {list(neighbors.shape)}")
            try:
                check_neighbors(neighbors, m)
            except ValueError as err:
                raise ValueError(f"{name}: neighbors: {err}") from None
        batch = check_batch(batch, pos.shape[0], pos.device)
        sample = farthest_point_sample(pos, batch, ratio=self.ratio,
                                       equal_clouds=equal_clouds)  # [S]
        pos_s, batch_s = pos[sample], batch[sample]  # [S, 3], [S]
        if neighbors is None:
            idx = knn(pos, self.k, batch, query=pos_s, query_batch=batch_s,
                      equal_clouds=equal_clouds)  # [S, K]
        else:
            idx = neighbors[sample]  # [S, K]: the centres are input nodes
        # the first linear map splits: W [x_j | p_j - p_i] + b = (W_x x_j + b) + W_p (p_j - p_i);
        # W_x x + b is computed once per input node, not once per (centre, neighbour)
        first = self.mlp[0]
        w_x, w_p = first.weight.split([self.in_channels, 3], dim=1)
        table = F.linear(x, w_x, first.bias)  # [M, C]
        padded = not may_read_values(idx) or bool((idx < 0).any())  # no read to compile
        out, = chunked_rows(self._pool, (pos_s, idx), (w_p, padded), tables=(table, pos),
                            index=1, chunk_size="auto",
                            row_elems=idx.shape[1] * self.out_channels, keep=(True,))
        return out, pos_s, batch_s, sample  # [S, C]

    def _pool(self, pos_i: Tensor, idx: Tensor, table: Tensor, pos: Tensor, w_p: Tensor,
              padded: bool) -> tuple[Tensor]:
        """Max-pooled MLP of one chunk of centres ``i`` (``pos_i, idx`` hold their rows)."""
        r, k = idx.shape
        rows = padded_rows(idx, pos.shape[0])  # [R * K] into each (padded) table
        rel = pos.index_select(0, rows).view(r, k, 3) - pos_i[:, None, :]  # [R, K, 3]: p_j - p_i
        h = table.index_select(0, rows)  # [R * K, C], a tensor of its own
        # the first linear map, added in place to the gathered rows, in their dtype (in-place
        # ops are not autocast)
        h = h.addmm_(rel.view(r * k, 3).to(h.dtype), w_p.t().to(h.dtype))
        # the last ReLU goes after the max (max_j relu(h_j) = relu(max_j h_j), gradient
        # included): one pass over [R, C] instead of two over [R, K, C]
        h = self.mlp[1:-1](h.view(r, k, -1))  # [R, K, C]
        if padded:
            h = h.masked_fill((idx < 0)[..., None], float("-inf"))
        return (self.mlp[-1](h.max(dim=1).values),)  # [R, C]


class TransitionUp(nn.Module):
    r"""Upsample coarse features to the fine points and add the skip features.

    Point Transformer's transition up (Zhao et al., ICCV 2021, Fig. 4c): the coarse
    features go through ``Linear, LayerNorm, ReLU``, are interpolated onto the fine points
    from their ``k`` nearest coarse points (inverse-distance weights, PointNet++'s feature
    propagation), and are added to the fine level's skip features after their own
    ``Linear, LayerNorm, ReLU``:

    .. math::
        y_i = \sum_{j \in kNN_{coarse}(p_i)} w_{ij}\, \mathrm{MLP}(x_j)
              + \mathrm{MLP}_{skip}(x^{skip}_i), \qquad
        w_{ij} = \frac{1 / \lVert p_i - p_j \rVert^2}{\sum_l 1 / \lVert p_i - p_l \rVert^2}

    Args:
        in_channels: coarse feature size ``C_in``.
        out_channels: output size ``C``.
        skip_channels: fine (skip) feature size (default ``C``).
        k: coarse neighbours per fine point for the default interpolation.
        upsample: ``(x, pos, batch, *, query, query_batch, return_attention) -> [M, C]``
            (and its ``local`` :class:`AttentionMap` with ``return_attention=True``), e.g.
            ``NadarayaWatsonPool(k=3, learn_sigma=True)``; default inverse distance
            (``pcattn.ops.interpolation_weights``) over ``k`` neighbours.

    ``forward(..., equal_clouds=B)``: both levels are ``B`` clouds of equal size, so the
    default interpolation's search takes its sizes from the shapes (what ``torch.compile``
    traces; see :func:`pcattn.ops.knn`).

    Shape:
        x: [S, C_in], pos: [S, 3], batch: [S] (coarse; ``None``: one cloud),
        x_skip: [M, C_skip], query: [M, 3], query_batch: [M] (fine) -> [M, C];
        with ``return_attention=True`` also a ``local`` :class:`AttentionMap` whose rows
        are the fine points: interpolation weights [M, K, 1] on ``idx [M, K]`` into the
        ``S`` coarse points (``num_sources = S``).
    """

    def __init__(self, in_channels: int, out_channels: int, *,
                 skip_channels: int | None = None, k: int = 3,
                 upsample: Callable | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        skip_channels = check_int(name, "skip_channels", skip_channels, optional=True)
        k = check_int(name, "k", k)
        self.skip_channels = skip_channels or out_channels
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, k
        self.mlp = mlp([in_channels, out_channels], last_act=True)
        self.mlp_skip = mlp([self.skip_channels, out_channels], last_act=True)
        self.upsample = upsample

    def reset_parameters(self) -> None:
        """Default inits of the MLPs (and of ``upsample``)."""
        reset_children(self)

    def forward(self, x: Tensor, pos: Tensor, batch: Tensor | None = None, *, x_skip: Tensor,
                query: Tensor, query_batch: Tensor | None = None,
                return_attention: bool = False, equal_clouds: int | None = None
                ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        check_points(name, x, pos, batch, self.in_channels)
        m = check_features(name, x_skip, self.skip_channels, name="x_skip",
                           width_name="skip_channels")
        check_positions(name, query, m, name="query", of="x_skip", like=x_skip)
        check_batch_rows(name, query_batch, m, name="query_batch", of="x_skip")
        h = self.mlp(x)  # [S, C]
        if self.upsample is None:
            idx, w = interpolation_weights(pos, batch, query=query, query_batch=query_batch,
                                           k=self.k, equal_clouds=equal_clouds)  # [M, K] each
            up = (w[..., None] * gather(h, idx)).sum(1)  # [M, C]
            amap = AttentionMap("local", w[..., None], idx=idx, num_sources=pos.shape[0])
        else:
            up = self.upsample(h, pos, batch, query=query, query_batch=query_batch,
                               return_attention=return_attention)  # [M, C]
            up, amap = up if return_attention else (up, None)
        out = up + self.mlp_skip(x_skip)  # [M, C]
        return (out, amap) if return_attention else out
