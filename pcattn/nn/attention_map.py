"""The one form every block and model returns its attention in.

A block called with ``return_attention=True`` returns ``(out, AttentionMap)``. Rows are
queries, columns are the sources the queries read; which tensors are set depends on ``kind``:

``local``  (kNN / ball neighbourhoods, interpolation): ``weight [M_q, K, H]``, ``idx [M_q, K]``
           into the source nodes, ``-1`` (weight 0) at padding. Queries are the rows; they
           are the source nodes themselves unless ``num_sources`` is set (transitions up,
           Nadaraya-Watson pooling: ``idx`` then indexes the ``num_sources`` source nodes).
``global`` (all pairs within a cloud): ``weight [B, H, N_max, N_max]`` and ``mask [B, N_max]``
           (True at real nodes), rows and columns in the order of the packed nodes of each cloud.
``graph``  (edges): ``weight [E, H]`` on ``edge_index [2, E]`` (row 0 source, row 1 target;
           the target is the query). ``GlobalTokens`` returns a graph map over its ``M`` nodes
           followed by the ``T`` tokens of each cloud (token ``t`` of cloud ``b`` is node
           ``M + b T + t``; ``num_sources = M + B T``).
``patch``  (dense within patches of a serialized order, :class:`SerializedAttention`):
           ``weight [NP, H, P, P]`` and ``idx [NP, P]``, the packed node at each slot of
           each patch (``-1`` at padding); ``weight[n, h, i, j]`` is what node
           ``idx[n, i]`` reads from node ``idx[n, j]``.
``pool``   (one query per cloud reading its nodes): ``weight [M, H]``, ``batch [M]``.
``channel`` (gates over channels, no point-to-point weight): ``weight [B, C]``.

The head axis ``H`` is the last one (the second for ``global`` and ``patch``): heads of
scalar attention, groups of grouped vector attention, channels of Point Transformer's vector
attention, 1 for kernels and interpolation. Weights that come from a softmax sum to 1 over
each query's valid sources. ``transposed=True`` marks a ``global`` map kept in its paper's
orientation with the *columns* as the nodes whose output is computed:
:class:`~pcattn.nn.OffsetAttention` returns PCT's ``attention[i, j]`` as is (row ``i`` the
query of the softmax ``q_i k_j``, columns L1-normalised after, node ``j`` receiving
``sum_i w[i, j] v_i``). :meth:`to_sparse` always gives the node that receives as the query,
so consumers need not know.

:meth:`AttentionMap.to_sparse` turns every kind but ``channel`` into one list of
``(query, source, weight)`` triples over packed node indices, which is what consumers
(``pcattn.viz``, attention rollout) read.

A model's ``forward_features(data, return_attention=True)`` returns its dict of features with
``"attention"``: a list of :class:`LayerAttention` in forward order, each map together with
the input points its queries and sources sit at, so maps of down-sampled stages can be drawn
and composed.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

KINDS = ("local", "global", "graph", "patch", "pool", "channel")


class AttentionMap(NamedTuple):
    """Attention weights and the structure they index (see the module docstring)."""

    kind: str
    weight: Tensor
    idx: Tensor | None = None
    edge_index: Tensor | None = None
    mask: Tensor | None = None
    batch: Tensor | None = None
    num_sources: int | None = None
    transposed: bool = False

    @property
    def heads(self) -> int:
        """Number of heads (channel groups) H; channels C for a ``channel`` map."""
        return (self.weight.shape[1] if self.kind in ("global", "patch")
                else self.weight.shape[-1])

    def to_sparse(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(query [nnz], source [nnz], weight [nnz, H])`` over packed node indices.

        The query is the node whose output the weight enters (for a ``transposed`` map the
        column). Padding (``idx == -1``, masked nodes) is dropped. ``pool`` maps have one
        query per cloud: the query index is the cloud id.
        """
        w = self.weight
        if self.kind == "local":
            m, k = self.idx.shape
            query = torch.arange(m, device=w.device).repeat_interleave(k)
            source = self.idx.reshape(-1)
            keep = source >= 0
            return query[keep], source[keep], w.reshape(m * k, -1)[keep]
        if self.kind == "global":
            b, h, n, _ = w.shape
            mask = self.mask if self.mask is not None else torch.ones(
                b, n, dtype=torch.bool, device=w.device)
            packed = torch.full((b, n), -1, dtype=torch.long, device=w.device)
            packed[mask] = torch.arange(int(mask.sum()), device=w.device)
            pair = mask[:, :, None] & mask[:, None, :]  # [B, N, N]
            cloud, i, j = pair.nonzero(as_tuple=True)
            query, source = (packed[cloud, j], packed[cloud, i]) if self.transposed else (
                packed[cloud, i], packed[cloud, j])
            return query, source, w.permute(0, 2, 3, 1)[cloud, i, j]
        if self.kind == "patch":
            valid = self.idx >= 0  # [NP, P]
            patch, i, j = (valid[:, :, None] & valid[:, None, :]).nonzero(as_tuple=True)
            return self.idx[patch, i], self.idx[patch, j], w.permute(0, 2, 3, 1)[patch, i, j]
        if self.kind == "graph":
            return self.edge_index[1], self.edge_index[0], w.reshape(w.shape[0], -1)
        if self.kind == "pool":
            batch = self.batch if self.batch is not None else torch.zeros(
                w.shape[0], dtype=torch.long, device=w.device)
            source = torch.arange(w.shape[0], device=w.device)
            return batch, source, w.reshape(w.shape[0], -1)
        raise ValueError(f"an AttentionMap of kind {self.kind!r} has no point-to-point weights")


class LayerAttention(NamedTuple):
    """One attention map of a model, tied to the input points.

    ``query_index [M_q]`` / ``source_index [M_s]``: packed indices into the model's input
    points of the map's query and source nodes (``map.idx`` and ``map.edge_index`` index the
    source nodes ``0..M_s-1``). ``residual``: the block adds its input to its output (attention
    rollout then mixes in the identity).
    """

    name: str
    map: AttentionMap
    query_index: Tensor
    source_index: Tensor
    residual: bool = True
