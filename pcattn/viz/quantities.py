"""What is drawn: attention maps, attention received and attention rollout, as tensors.

Everything here reads only the :class:`~pcattn.nn.attention_map.LayerAttention` list a model
returns from ``forward_features(data, return_attention=True)["attention"]`` and lives in the
space of the model's input points: a layer's weights ``(query, source, weight [nnz, H])``
(``AttentionMap.to_sparse``) are moved onto input points by ``query_index`` /
``source_index``. Values are returned per input point (``[N]``), zero where a point is not
read.

``relative=True`` measures a weight against uniform attention: ``w x n`` with ``n`` the number
of sources its query reads (1 = uniform, 2 = twice the uniform share), the scale on which a
near-uniform map shows what it prefers; for received attention, the column sum over the column
sum uniform rows would give.

``layers`` below are the layers that weigh points (:func:`point_layers`: every kind but
``channel``); ``layer`` indexes that list (negative counts from the end) or is a layer name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from pcattn.nn.attention_map import LayerAttention


def point_layers(layers: Sequence[LayerAttention]) -> list[LayerAttention]:
    """The layers whose maps weigh points (channel gates are left out)."""
    return [la for la in layers if la.map.kind != "channel"]


def select_layer(layers: Sequence[LayerAttention], layer: int | str) -> int:
    """Index of ``layer`` (an index, negative from the end, or a name) in ``layers``."""
    names = [la.name for la in layers]
    if not names:
        raise ValueError("the model returned no attention maps that weigh points")
    if isinstance(layer, str) and not layer.lstrip("-").isdigit():
        if layer not in names:
            raise ValueError(f"no layer named {layer!r}; layers: {_listing(names)}")
        return names.index(layer)
    i = int(layer)
    if not -len(names) <= i < len(names):
        raise ValueError(f"layer {i} is out of range: valid layers are 0..{len(names) - 1} "
                         f"({_listing(names)})")
    return i % len(names)


def _listing(names: list[str]) -> str:
    return ", ".join(f"{i}: {n}" for i, n in enumerate(names))


def head_weights(layer: LayerAttention, head: int | None = None) -> Tensor:
    """The weights of one head, or their mean over heads (``head=None``).

    Shape:
        -> [nnz] (in the order of ``layer.map.to_sparse()``)
    """
    _, _, w = layer.map.to_sparse()  # [nnz, H]
    if head is None:
        return w.float().mean(dim=1)
    heads = w.shape[1]
    if not -heads <= head < heads:
        raise ValueError(f"head {head} is out of range: layer {layer.name!r} has heads "
                         f"0..{heads - 1} (or leave the head unset for their mean)")
    return w[:, head].float()


def layer_triples(layer: LayerAttention, head: int | None = None
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """``(query point [nnz], source point [nnz], weight [nnz])`` over input points.

    For a ``pool`` map (one query per cloud) the query is the cloud id.
    """
    q, s, _ = layer.map.to_sparse()
    rows = q if layer.map.kind == "pool" else layer.query_index[q]
    return rows, layer.source_index[s], head_weights(layer, head)


def row_sizes(rows: Tensor) -> Tensor:
    """For each triple, how many sources its query row reads (``1 / n`` is uniform).

    Shape:
        rows: [nnz] -> [nnz]
    """
    return torch.bincount(rows)[rows]


def snap_queries(layer: LayerAttention, pos: Tensor, query: Tensor) -> Tensor:
    """The query nodes of ``layer`` nearest to the input points ``query`` (a down-sampled
    stage has queries at only some input points). Returns input-point indices.

    Shape:
        pos: [N, 3], query: [Q] -> [Q]
    """
    if layer.map.kind == "pool":
        return query
    nodes = layer.query_index  # [M_q]
    d = torch.cdist(pos[query].float(), pos[nodes].float())  # [Q, M_q]
    return nodes[d.argmin(dim=1)]


def attention_map(layers: Sequence[LayerAttention], pos: Tensor, query: Tensor | None,
                  layer: int | str = 0, head: int | None = None, *,
                  relative: bool = False) -> Tensor:
    """The attention the query point(s) give to the points they read in one layer
    (``relative``: times the number of points each query reads, 1 = uniform).

    Each query is first snapped to the layer's nearest query node (:func:`snap_queries`);
    with several queries a point gets the largest weight any of them gives it. A ``pool``
    layer's one query per cloud reads all its points: its weights are returned whole
    (``query`` is not used).

    Shape:
        pos: [N, 3], query: [Q] -> [N]
    """
    return map_read(layers, pos, query, layer, head, relative=relative)[0]


def map_read(layers: Sequence[LayerAttention], pos: Tensor, query: Tensor | None,
             layer: int | str = 0, head: int | None = None, *,
             relative: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`attention_map` and the mask of the points the queries read.

    Shape:
        pos: [N, 3], query: [Q] -> ([N], [N] bool)
    """
    la = layers[select_layer(layers, layer)]
    rows, cols, w = layer_triples(la, head)
    if relative:
        w = w * row_sizes(rows)
    if la.map.kind != "pool":
        keep = torch.isin(rows, snap_queries(la, pos, query.to(rows.device)))
        cols, w = cols[keep], w[keep]
    read = torch.zeros(pos.shape[0], dtype=torch.bool, device=w.device)
    read[cols] = True
    out = torch.zeros(pos.shape[0], device=w.device)
    return out.scatter_reduce_(0, cols, w, reduce="amax"), read


def attention_received(layers: Sequence[LayerAttention], num_points: int,
                       layer: int | str = 0, head: int | None = None, *,
                       relative: bool = False) -> Tensor:
    """Per input point, the attention it receives in one layer: the column sums
    (``relative``: divided by the column sums of uniform rows, ``sum_i 1 / n_i`` over the
    queries ``i`` that read the point; 1 = what uniform attention gives it, 0 where no query
    reads it).

    Shape:
        -> [N]
    """
    rows, cols, w = layer_triples(layers[select_layer(layers, layer)], head)
    out = torch.zeros(num_points, device=w.device).index_add_(0, cols, w)
    if not relative:
        return out
    uniform = torch.zeros(num_points, device=w.device).index_add_(
        0, cols, 1.0 / row_sizes(rows).float())  # [N]
    return torch.where(uniform > 0, out / uniform.clamp_min(1e-30), torch.zeros_like(out))


def rollout_step(layer: LayerAttention, num_points: int) -> Tensor:
    """One layer as a sparse row-stochastic ``[N, N]`` matrix over input points.

    The rows of the layer's query nodes hold its mean-over-heads attention, plus the
    identity when the layer is residual (Abnar & Zuidema 2020: ``0.5 A + 0.5 I``, rows
    renormalised); every other input point keeps its feature (an identity row), which is
    how a down-sampled stage carries the rollout of the points it sampled.
    """
    rows, cols, w = layer_triples(layer)
    n, dev = num_points, w.device
    eye = torch.arange(n, device=dev)
    is_query = torch.zeros(n, dtype=torch.bool, device=dev)
    is_query[layer.query_index] = True
    if layer.residual:
        rows, cols = torch.cat([rows, layer.query_index]), torch.cat([cols, layer.query_index])
        w = torch.cat([w, torch.ones(layer.query_index.numel(), device=dev)])
    total = torch.zeros(n, device=dev).index_add_(0, rows, w)  # [N]
    w = w / total[rows].clamp_min(1e-12)
    keep = ~is_query  # identity rows
    rows = torch.cat([rows, eye[keep]])
    cols = torch.cat([cols, eye[keep]])
    w = torch.cat([w, torch.ones(int(keep.sum()), device=dev)])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), w, (n, n),
                                   check_invariants=False).coalesce()


def rollout_matrix(layers: Sequence[LayerAttention], num_points: int,
                   layer: int | str = -1) -> Tensor:
    """Attention rollout up to and including ``layer``: ``R = S_l ... S_1`` with ``S`` the
    :func:`rollout_step` matrices, composed sparse (never a dense ``[N, N]`` for local maps).
    Row ``i`` says how much of each input point reaches point ``i``'s feature after
    ``layer``; rows sum to 1. ``pool`` layers (a query per cloud, not per point) are skipped.

    Shape:
        -> sparse [N, N]
    """
    last = select_layer(layers, layer)
    dev = layers[0].source_index.device
    eye = torch.arange(num_points, device=dev)
    out = torch.sparse_coo_tensor(torch.stack([eye, eye]), torch.ones(num_points, device=dev),
                                  (num_points, num_points), check_invariants=False).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        for la in layers[:last + 1]:
            if la.map.kind != "pool":
                out = torch.sparse.mm(rollout_step(la, num_points), out).coalesce()
    return out


def attention_rollout(layers: Sequence[LayerAttention], pos: Tensor, query: Tensor | None,
                      layer: int | str = -1) -> Tensor:
    """Which input points reach the query point(s)' feature after ``layer``: rows of
    :func:`rollout_matrix` (largest over several queries), queries snapped to that layer's
    nodes. When ``layer`` is a ``pool`` map the cloud is the query: its pooling weights
    composed with the rollout of the layers before it (``query`` is not used).

    Shape:
        pos: [N, 3], query: [Q] -> [N]
    """
    i = select_layer(layers, layer)
    n = pos.shape[0]
    if layers[i].map.kind == "pool":
        pooled = attention_map(layers, pos, None, i)  # [N]
        if i == 0:
            return pooled
        r = rollout_matrix(layers, n, i - 1)
        return torch.sparse.mm(r.t(), pooled[:, None]).squeeze(1)  # [N]
    rows = snap_queries(layers[i], pos, query)
    r = rollout_matrix(layers, n, i).index_select(0, rows.to(pos.device))
    return r.to_dense().amax(dim=0)
