"""Nadaraya-Watson kernel regression as pooling, upsampling and local attention: the
non-parametric baseline."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import (
    check_batch_rows,
    check_features,
    check_int,
    check_points,
    local_neighbors,
)
from pcattn.nn.pool import global_mean_pool
from pcattn.ops.batching import batch_size, check_batch, counts_and_ptr, equal_cloud_size
from pcattn.ops.gather import gather
from pcattn.ops.knn import knn
from pcattn.ops.softmax import masked_softmax


class _Bandwidth(nn.Module):
    """The Gaussian kernel's bandwidth ``sigma`` (> 0), fixed (a buffer) or learned (a
    parameter), stored as ``log sigma``; shared by the Nadaraya-Watson pool and layer."""

    def __init__(self, *, sigma: float, learn_sigma: bool) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"{type(self).__name__}: sigma must be > 0, got {sigma}")
        self.learn_sigma, self.sigma_init = learn_sigma, sigma
        log_sigma = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp()

    def reset_parameters(self) -> None:
        """The bandwidth back to its initial ``sigma``."""
        with torch.no_grad():
            self.log_sigma.fill_(math.log(self.sigma_init))


class NadarayaWatsonPool(_Bandwidth):
    r"""Gaussian-kernel attention from query points to the nodes of their cloud.

    The Nadaraya-Watson estimator (Nadaraya 1964; Watson 1964) is attention whose scores
    are fixed by geometry: the query is a location, the keys are the node positions and the
    values the node features,

    .. math::
        f(q) = \sum_{i \in b(q)} \operatorname{softmax}_i\Big(
               -\frac{\lVert q - p_i \rVert^2}{2 \sigma^2}\Big)\, v_i

    with a bandwidth ``sigma`` that is fixed or learned (stored as ``log sigma`` so it
    stays positive). It has no weights besides ``sigma``, so it is **the non-parametric
    baseline that learned attention must beat**: a learned pooling or upsampling block
    that does no better than this kernel smoother has not learned anything from content.

    Queries:

    * ``query=None``: the centroid of each cloud, i.e. global pooling to ``[B, C]``
      (``sigma -> inf`` gives mean pooling, ``sigma -> 0`` the node nearest the centroid);
    * farthest-point-sampled centres,
      ``s = pcattn.ops.farthest_point_sample(pos, batch, ratio=0.25)`` then
      ``query=pos[s], query_batch=batch[s]`` (a downsampling pool);
    * any given points, e.g. the fine points of a segmentation decoder
      (``query=pos_fine, query_batch=batch_fine``): a drop-in ``upsample`` for
      :class:`~pcattn.nn.TransitionUp`.

    Each query sees the nodes of its own cloud: all of them with ``k=None`` (the exact
    estimator; ``O(M_q * N_max)`` memory), or its ``k`` nearest (the kernel truncated;
    with ``k`` and a fixed ``sigma`` this is ``pcattn.ops.interpolate(...,
    mode="nadaraya_watson")``).

    Args:
        sigma: kernel bandwidth (initial value when learned), in units of ``pos``.
        learn_sigma: make ``log sigma`` a parameter.
        k: nodes per query (``None``: every node of the query's cloud).

    Shape:
        x: [M, C], pos: [M, 3], batch: [M] (``None``: one cloud), query: [M_q, 3],
        query_batch: [M_q] -> [M_q, C]; without ``query``: -> [B, C]. With
        ``return_attention=True`` also a ``local`` :class:`AttentionMap` whose rows are the
        queries (the clouds without ``query``): weights [M_q, K, 1] on ``idx [M_q, K]``
        into the ``M`` nodes (``num_sources = M``), zero at ``-1``. With ``k=None``
        ``idx`` lists every node of the query's cloud in order (``K = N_max``); with ``k``
        set, it is ``pcattn.ops.knn(pos, k, batch, query=..., query_batch=...)``.

    ``forward(..., equal_clouds=B)``: the nodes are ``B`` clouds of equal size (and the
    queries ``B`` equal groups), so the sizes come from the shapes, nothing is read back
    and ``torch.compile`` traces the pool in one graph (see :func:`pcattn.ops.knn`).
    """

    def __init__(self, *, sigma: float = 0.1, learn_sigma: bool = False,
                 k: int | None = None) -> None:
        super().__init__(sigma=sigma, learn_sigma=learn_sigma)
        self.k = check_int(type(self).__name__, "k", k, optional=True)

    def forward(
        self, x: Tensor, pos: Tensor, batch: Tensor | None = None, *,
        query: Tensor | None = None, query_batch: Tensor | None = None,
        return_attention: bool = False, equal_clouds: int | None = None,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        m = check_points(name, x, pos, batch, None)
        if query is not None:
            check_features(name, query, 3, name="query", width_name="xyz")
            check_batch_rows(name, query_batch, query.shape[0], name="query_batch", of="query")
        if equal_clouds is None:
            multi = batch is not None and batch.numel() > 0 and int(batch[-1]) > 0
            batch = check_batch(batch, pos.shape[0], pos.device)
            b = batch_size(batch)
        else:
            n = equal_cloud_size(batch, m, equal_clouds)
            multi, b = equal_clouds > 1, equal_clouds
            batch = check_batch(batch, pos.shape[0], pos.device)
        if query is None:
            if query_batch is not None:
                raise ValueError(f"{name}: query_batch given without query")
            query = global_mean_pool(pos, batch, num_clouds=b)  # [B, 3] centroids
            query_batch = torch.arange(b, device=pos.device)  # [B]
        elif query_batch is None and multi:
            raise ValueError(f"{name}: query_batch is needed with query when batch has several "
                             "clouds")
        query_batch = check_batch(query_batch, query.shape[0], query.device)
        if self.k is None and equal_clouds is not None:
            idx = query_batch[:, None] * n + torch.arange(n, device=pos.device)  # [M_q, N]
        elif self.k is None:
            idx = _cloud_index(batch, query_batch, max(b, batch_size(query_batch)))  # [M_q, N]
        else:
            idx = knn(pos, self.k, batch, query=query, query_batch=query_batch,
                      equal_clouds=equal_clouds)  # [M_q, K]
        valid = idx >= 0  # [M_q, K]
        diff = gather(pos, idx) - query[:, None, :]  # [M_q, K, 3]
        d2 = (diff * diff).sum(-1)  # [M_q, K]
        sigma = self.sigma.to(pos.dtype)
        weight = masked_softmax(-d2 / (2 * sigma * sigma), valid)  # [M_q, K]
        out = torch.einsum("qk,qkc->qc", weight, gather(x, idx))  # [M_q, C]
        if not return_attention:
            return out
        return out, AttentionMap("local", weight[..., None], idx=idx,
                                 num_sources=pos.shape[0])  # weight [M_q, K, 1]

    def extra_repr(self) -> str:
        return f"sigma={float(self.sigma.detach()):.4g}, learn_sigma={self.learn_sigma}, k={self.k}"


def _cloud_index(batch: Tensor, query_batch: Tensor, num_clouds: int) -> Tensor:
    """Every node of each query's cloud, in node order, ``-1`` padded to ``N_max``.

    Shape:
        batch: [M], query_batch: [M_q] -> [M_q, N_max]
    """
    counts, ptr = counts_and_ptr(batch, num_clouds)  # [B], [B + 1]
    n_max = int(counts.max()) if counts.numel() else 0
    slot = torch.arange(n_max, device=batch.device)  # [N_max]
    idx = ptr[query_batch][:, None] + slot  # [M_q, N_max]
    return idx.masked_fill(slot >= counts[query_batch][:, None], -1)


class NadarayaWatsonLayer(_Bandwidth):
    r"""Gaussian-kernel attention from each node to its neighbours ``idx``: the local,
    non-parametric counterpart of a learned local attention layer.

    Nadaraya-Watson kernel regression (Nadaraya 1964; Watson 1964) over the neighbourhood
    ``N(i)`` that a local attention layer would use:

    .. math::
        y_i = \sum_{j \in N(i)} \operatorname{softmax}_j\Big(
              -\frac{\lVert p_i - p_j \rVert^2}{2 \sigma^2}\Big)\, x_j

    The weights depend on the positions only; ``sigma`` is fixed, or learned with
    ``learn_sigma=True`` (stored as ``log sigma``; the parametric kernel regression of the
    attention literature, e.g. Zhang et al., *Dive into Deep Learning*, sec. 11.2). It has no
    other parameter: put it where a :class:`~pcattn.nn.PointTransformerLayer` was to see what
    the learned weights add over the geometry alone.

    Args:
        sigma: kernel bandwidth (initial value when learned), in units of ``pos``.
        learn_sigma: make ``log sigma`` a parameter.
        add_self_loops: with ``edge_index=``, make each node its own neighbour exactly
            once (as PyG's convs do by default); ``idx`` is taken as given.

    Shape:
        x: [M, C], pos: [M, 3], idx: [M, K] (``-1`` padded) or edge_index: [2, E] (PyG's,
        converted by :func:`pcattn.ops.edge_index_to_neighbors`) -> [M, C]; with
        ``return_attention=True`` also an ``AttentionMap`` of kind ``"local"`` with
        ``weight [M, K, 1]`` (zero at padding) and ``idx``.
    """

    def __init__(self, *, sigma: float = 1.0, learn_sigma: bool = False,
                 add_self_loops: bool = True) -> None:
        super().__init__(sigma=sigma, learn_sigma=learn_sigma)
        self.add_self_loops = add_self_loops

    def forward(self, x: Tensor, pos: Tensor, idx: Tensor | None = None, *,
                edge_index: Tensor | None = None, return_attention: bool = False
                ) -> Tensor | tuple[Tensor, AttentionMap]:
        idx = local_neighbors(type(self).__name__, x, pos, idx, edge_index, None,
                              add_self_loops=self.add_self_loops)
        diff = gather(pos, idx) - pos[:, None, :]  # [M, K, 3]
        d2 = (diff * diff).sum(-1)  # [M, K]
        sigma = self.sigma.to(pos.dtype)
        weight = masked_softmax(-d2 / (2 * sigma * sigma), idx >= 0)  # [M, K]
        out = torch.einsum("mk,mkc->mc", weight, gather(x, idx))  # [M, C]
        if not return_attention:
            return out
        return out, AttentionMap("local", weight[..., None], idx=idx)  # weight [M, K, 1]

    def extra_repr(self) -> str:
        return f"sigma={float(self.sigma.detach()):.4g}, learn_sigma={self.learn_sigma}"
