"""Packed <-> dense layouts and the batch vector, as in PyG.

A batch of clouds is packed: ``pos [M, 3]`` with ``batch [M]`` giving the cloud id of each
node, sorted ascending. Dense code wants ``[B, N_max, C]`` with a mask instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.checks import check_index_range, may_read_values


def check_batch(batch: Tensor | None, num_nodes: int, device: torch.device) -> Tensor:
    """Return a valid ``batch [M]`` (zeros if ``None``), or raise a clear error (order and
    ids are read where :func:`~pcattn.ops.checks.may_read_values`)."""
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(
            f"batch must be a 1-D tensor with one cloud id per node ({num_nodes}), "
            f"got shape {tuple(batch.shape)}"
        )
    if batch.dtype.is_floating_point or batch.dtype.is_complex or batch.dtype == torch.bool:
        raise TypeError(f"batch must hold integer cloud ids, got {batch.dtype}; "
                        "cast it with batch.long()")
    if batch.numel() == 0 or not may_read_values(batch):
        return batch.long()
    unsorted, first = torch.stack([(batch[1:] < batch[:-1]).any().long(),
                                   batch[0].long()]).tolist()  # one read-back
    if unsorted:
        raise ValueError(
            "batch must be sorted ascending (nodes of one cloud contiguous, as PyG's "
            "Batch makes them); sort the nodes with `perm = batch.argsort(stable=True)`"
        )
    if first < 0:
        raise ValueError(f"batch holds the cloud id {first}; ids count from 0")
    return batch.long()


def batch_size(batch: Tensor) -> int:
    """Number of clouds ``B`` (last id + 1) of a sorted batch vector."""
    return int(batch[-1]) + 1 if batch.numel() else 0


def equal_cloud_size(batch: Tensor | None, num_nodes: int, num_clouds: int,
                     name: str = "batch") -> int:
    """Nodes per cloud of a batch of ``num_clouds`` clouds of equal size, from the shapes.

    This is the layout ``torch.compile`` can trace (sizes are Python ints, nothing is read
    back): ``equal_clouds=B`` of :func:`~pcattn.ops.knn` and
    :func:`~pcattn.ops.farthest_point_sample`. ``batch`` must then be ``n`` zeros, ``n``
    ones, ... (``n = num_nodes / num_clouds``; ``None`` for one cloud): checked where
    :func:`~pcattn.ops.checks.may_read_values`, else asserted in the graph
    (``torch._assert_async``, raised when the graph runs; not on ``meta``).
    """
    if isinstance(num_clouds, bool) or not isinstance(num_clouds, int) or num_clouds < 1:
        raise ValueError(f"equal_clouds must be an integer >= 1, got {num_clouds!r}")
    if num_nodes % num_clouds:
        raise ValueError(f"equal_clouds={num_clouds} clouds of equal size cannot hold "
                         f"{num_nodes} nodes; pass equal_clouds=None for clouds of any size")
    n = num_nodes // num_clouds
    if batch is None:
        if num_clouds != 1:
            raise ValueError(f"{name} is None (one cloud) but equal_clouds={num_clouds}")
        return n
    if batch.dim() != 1 or batch.shape[0] != num_nodes:
        raise ValueError(f"{name} must be a 1-D tensor with one cloud id per node "
                         f"({num_nodes}), got shape {tuple(batch.shape)}")
    if num_nodes and batch.device.type != "meta":
        want = torch.arange(num_nodes, device=batch.device) // n  # [M]
        same = (batch == want).all()
        msg = (f"{name} is not {num_clouds} clouds of equal size in order (equal_clouds="
               f"{num_clouds}; under torch.compile the models take clouds of equal size)")
        if may_read_values(batch):
            if not bool(same):
                raise ValueError(msg)
        else:
            torch._assert_async(same, msg)
    return n


def counts_and_ptr(batch: Tensor, num_clouds: int | None = None) -> tuple[Tensor, Tensor]:
    """Nodes per cloud ``[B]`` and CSR offsets ``ptr [B + 1]`` of a sorted batch vector."""
    num_clouds = batch_size(batch) if num_clouds is None else num_clouds
    counts = torch.bincount(batch, minlength=num_clouds)
    return counts, torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def unpack(
    x: Tensor, batch: Tensor | None = None, *, num_clouds: int | None = None,
    max_nodes: int | None = None, fill_value: float = 0.0, equal_clouds: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Packed ``[M, *]`` -> dense ``[B, N_max, *]`` and mask ``[B, N_max]``.

    Like ``torch_geometric.utils.to_dense_batch``; padded slots hold ``fill_value``.
    ``equal_clouds=B``: ``B`` clouds of equal size (:func:`equal_cloud_size`), a reshape
    with an all-true mask, sizes from the shapes (``num_clouds`` and ``max_nodes`` unused).

    Shape:
        x: [M, *], batch: [M] -> ([B, N_max, *], [B, N_max])
    """
    if equal_clouds is not None:
        n = equal_cloud_size(batch, x.shape[0], equal_clouds)
        return (x.reshape((equal_clouds, n) + tuple(x.shape[1:])),
                torch.ones(equal_clouds, n, dtype=torch.bool, device=x.device))
    batch = check_batch(batch, x.shape[0], x.device)
    counts, ptr = counts_and_ptr(batch, num_clouds)
    num_clouds = counts.numel()
    n_max = int(counts.max()) if counts.numel() else 0
    n_max = n_max if max_nodes is None else max_nodes
    slot = torch.arange(batch.numel(), device=x.device) - ptr[batch]  # [M] position in cloud
    dense = x.new_full((num_clouds, n_max) + tuple(x.shape[1:]), fill_value)
    dense[batch, slot] = x
    mask = torch.zeros(num_clouds, n_max, dtype=torch.bool, device=x.device)
    mask[batch, slot] = True
    return dense, mask


def pack(dense: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Dense ``[B, N, *]`` (+ mask ``[B, N]``) -> packed ``x [M, *]`` and ``batch [M]``.

    Shape:
        dense: [B, N, *], mask: [B, N] -> ([M, *], [M])
    """
    b, n = dense.shape[:2]
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=dense.device)
    batch = torch.arange(b, device=dense.device)[:, None].expand(b, n)[mask]
    return dense[mask], batch


def neighbors_to_edge_index(idx: Tensor) -> Tensor:
    """Dense neighbourhoods ``idx [M, K]`` (``-1`` padded) -> ``edge_index [2, E]``.

    Row 0 holds the neighbour ``j`` (source), row 1 the centre ``i`` (target), PyG's
    ``flow="source_to_target"`` convention.
    """
    centre = torch.arange(idx.shape[0], device=idx.device)[:, None].expand_as(idx)
    valid = idx >= 0
    return torch.stack([idx[valid], centre[valid]], dim=0)


def edge_index_to_neighbors(
    edge_index: Tensor, num_nodes: int, k: int | None = None, *, add_self_loops: bool = False
) -> Tensor:
    """``edge_index [2, E]`` (source, target) -> ``idx [M, K]``, ``-1`` padded.

    Each target's sources are kept in edge order. ``K`` is the largest in-degree unless
    given; with a smaller ``k`` the extra edges are an error (no silent truncation).

    ``add_self_loops=True`` makes every node its own neighbour exactly once, first in its
    row, as PyG's ``PointTransformerConv`` / ``GATv2Conv`` do by default (they remove the
    graph's self loops and add one per node): without it a graph of PyG's ``knn_graph``
    (``loop=False``) or a mesh leaves the centre out of its own neighbourhood. A kNN from
    :func:`pcattn.ops.knn` holds each node as its own first neighbour already.

    Shape:
        edge_index: [2, E] -> [M, K] (``K`` counts the self loop when added)
    """
    check_edge_index(edge_index, num_nodes)
    src, dst = edge_index[0].long(), edge_index[1].long()
    if add_self_loops:
        keep = src != dst
        loops = torch.arange(num_nodes, device=src.device)
        src, dst = torch.cat([loops, src[keep]]), torch.cat([loops, dst[keep]])
    order = torch.argsort(dst, stable=True)
    src, dst = src[order], dst[order]
    deg = torch.bincount(dst, minlength=num_nodes)
    k_max = int(deg.max()) if deg.numel() else 0
    if k is None:
        k = k_max
    elif k < k_max:
        raise ValueError(f"a node has {k_max} incoming edges but k={k}; pass k>={k_max}")
    start = torch.zeros(num_nodes + 1, dtype=torch.long, device=src.device)
    torch.cumsum(deg, 0, out=start[1:])
    slot = torch.arange(dst.numel(), device=src.device) - start[dst]
    idx = torch.full((num_nodes, k), -1, dtype=torch.long, device=src.device)
    idx[dst, slot] = src
    return idx


def check_edge_index(edge_index, num_nodes: int, name: str = "edge_index") -> None:
    """Raise a clear error unless ``edge_index`` is an integer ``[2, E]`` tensor of node
    indices in ``[0, num_nodes)`` (the range is read in eager mode on the CPU only, see
    :func:`~pcattn.ops.checks.may_read_values`)."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{name} must be [2, E] (row 0 source, row 1 target, as in PyG), got "
                         f"{list(edge_index.shape)}")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex \
            or edge_index.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer node indices, got {edge_index.dtype}; "
                        f"cast it with {name}.long()")
    if edge_index.numel() and may_read_values(edge_index):
        lo, hi = torch.stack(torch.aminmax(edge_index)).tolist()  # one read-back
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"{name} holds {lo if lo < 0 else hi}, outside [0, {num_nodes}) "
                             f"for {num_nodes} nodes")


def check_neighbors(idx: Tensor, num_rows: int, num_nodes: int | None = None) -> None:
    """Raise a clear error unless ``idx`` is a ``[num_rows, K]`` integer neighbourhood whose
    entries are ``-1`` (padding) or indices into ``num_nodes`` nodes (default ``num_rows``)."""
    if idx.dim() != 2 or idx.shape[0] != num_rows or idx.dtype.is_floating_point:
        raise ValueError(f"idx must be an integer [M, K] tensor with M={num_rows} rows, got "
                         f"{tuple(idx.shape)} {idx.dtype}; build it with "
                         "pcattn.ops.knn(pos, k, batch)")
    check_index_range(idx, num_rows if num_nodes is None else num_nodes)
