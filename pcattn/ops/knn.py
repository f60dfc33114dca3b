"""Nearest neighbours within each cloud of a packed batch: ``knn`` and ``ball_query``.

The pure-torch path works on dense ``[B, N_max, 3]`` blocks in chunks of query rows, so
memory stays ``O(chunk * N_max + M * K)`` and no ``[M, M]`` matrix exists at once. On the
CPU, open3d's KD-tree search (``open3d.core.nns``) is much faster for the same answer and
is used when ``backend="auto"``; both paths pass the same tests.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcattn.ops.backend import has_open3d
from pcattn.ops.batching import check_batch, counts_and_ptr, equal_cloud_size, unpack
from pcattn.ops.checks import check_count, check_points

_CHUNK_ELEMS = 1 << 24  # distances held at once by the torch path (64 MB in float32)
_BACKENDS = ("auto", "torch", "open3d")


def knn(
    pos: Tensor, k: int, batch: Tensor | None = None, *, query: Tensor | None = None,
    query_batch: Tensor | None = None, dilation: int = 1, backend: str = "auto",
    equal_clouds: int | None = None,
) -> Tensor:
    """Indices of the ``k`` nearest points of ``pos`` to each query, within its cloud.

    Neighbours are sorted by distance; without ``query`` every point queries its own cloud
    and finds itself first. Rows of clouds with fewer than ``k`` points end in ``-1``.
    ``dilation=d`` keeps every ``d``-th of the ``k * d`` nearest (dilated kNN, as in
    DeepGCN and the "stride attention" of sparse transformers).

    Args:
        pos: reference points, sorted by ``batch``.
        k: neighbours per query.
        batch: cloud id of each reference point (``None``: one cloud).
        query: query points (default: ``pos``).
        query_batch: cloud id of each query (default: ``batch`` when ``query`` is None).
        dilation: stride through the sorted neighbour list.
        backend: ``"auto"`` (open3d on the CPU when importable and not under
            ``torch.compile``, else torch), ``"torch"`` or ``"open3d"``.
        equal_clouds: ``B`` when the batch is ``B`` clouds of equal size (and the queries
            ``B`` equal groups): the torch path then takes its sizes from the shapes and
            reads nothing back, so ``torch.compile`` traces it in one graph (see
            :func:`~pcattn.ops.batching.equal_cloud_size`); ``None``: any sizes.

    Shape:
        pos: [M, 3], batch: [M], query: [M_q, 3], query_batch: [M_q] -> [M_q, K]
    """
    k, dilation = check_count(k, "k"), check_count(dilation, "dilation")
    idx, _ = knn_with_distance(pos, k * dilation, batch, query=query,
                               query_batch=query_batch, backend=backend,
                               equal_clouds=equal_clouds)
    return idx[:, ::dilation] if dilation > 1 else idx


def ball_query(
    pos: Tensor, radius: float, k: int, batch: Tensor | None = None, *,
    query: Tensor | None = None, query_batch: Tensor | None = None, backend: str = "auto",
) -> Tensor:
    """The ``k`` nearest points within ``radius`` of each query, ``-1`` padded.

    Unlike PointNet++'s CUDA op (first ``k`` in index order, padded by repeating the
    first hit), neighbours here are the nearest ones and padding is explicit.

    Shape:
        pos: [M, 3], batch: [M], query: [M_q, 3] -> [M_q, K]
    """
    try:
        ok = not isinstance(radius, (bool, str)) and 0 < float(radius) < float("inf")
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
    idx, dist2 = knn_with_distance(pos, k, batch, query=query, query_batch=query_batch,
                                   backend=backend)
    return idx.masked_fill(dist2 > radius * radius, -1)


def knn_with_distance(
    pos: Tensor, k: int, batch: Tensor | None = None, *, query: Tensor | None = None,
    query_batch: Tensor | None = None, backend: str = "auto", equal_clouds: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Like :func:`knn` and also the squared distances (``inf`` where ``-1``).

    Distances are computed in float32 when ``pos`` is float16 / bfloat16 (in half precision
    the neighbour sets are wrong for many rows) and returned in that dtype: float32 for
    float16 / bfloat16 / float32 input, float64 for float64 input.

    Shape:
        pos: [M, 3], query: [M_q, 3] -> ([M_q, K], [M_q, K])
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {_BACKENDS}")
    k = check_count(k, "k")
    pos = _compute_dtype(check_points(pos, "pos"))
    if query is not None:
        query = check_points(query, "query").to(pos.dtype)
    if query is not None and query_batch is None and batch is not None:
        raise ValueError("batch is given but query_batch is not: pass the cloud id of each "
                         "query (query_batch [M_q])")
    batch = check_batch(batch, pos.shape[0], pos.device)
    if query is None:
        if query_batch is not None:
            raise ValueError("query_batch given without query")
        query, query_batch = pos, batch
    else:
        query_batch = check_batch(query_batch, query.shape[0], query.device)
    if backend == "auto":
        backend = ("open3d" if pos.device.type == "cpu" and not torch.compiler.is_compiling()
                   and has_open3d() else "torch")
    if backend == "open3d" and pos.device.type != "cpu":
        raise ValueError("backend='open3d' runs on CPU tensors only; use backend='torch' "
                         f"for tensors on {pos.device.type}")
    if equal_clouds is not None:
        b = equal_clouds
        n = equal_cloud_size(batch, pos.shape[0], b)
        q = equal_cloud_size(query_batch, query.shape[0], b, "query_batch")
        if backend == "torch":
            idx, dist = _knn_dense(pos.reshape(b, n, 3), None, query.reshape(b, q, 3),
                                   torch.arange(b, device=pos.device) * n, k)
            return idx.view(b * q, k), dist.view(b * q, k)
    num_clouds = max(int(batch[-1]) + 1 if batch.numel() else 0,
                     int(query_batch[-1]) + 1 if query_batch.numel() else 0)
    run = _knn_open3d if backend == "open3d" else _knn_torch
    return run(pos, k, batch, query, query_batch, num_clouds)


def _compute_dtype(pos: Tensor) -> Tensor:
    """float16 / bfloat16 points as float32; float32 and float64 unchanged."""
    return pos.float() if pos.dtype in (torch.float16, torch.bfloat16) else pos


def _knn_torch(pos, k, batch, query, query_batch, num_clouds):
    ref, ref_mask = unpack(pos, batch, num_clouds=num_clouds)  # [B, N, 3], [B, N]
    qry, qry_mask = unpack(query, query_batch, num_clouds=num_clouds)  # [B, Q, 3]
    _, ptr = counts_and_ptr(batch, num_clouds)
    idx, dist = _knn_dense(ref, ref_mask, qry, ptr[:-1], k)
    return idx[qry_mask], dist[qry_mask]  # [M_q, K]


def _knn_dense(ref: Tensor, ref_mask: Tensor | None, qry: Tensor, offset: Tensor, k: int
               ) -> tuple[Tensor, Tensor]:
    """kNN of dense clouds ``ref [B, N, 3]`` (``ref_mask [B, N]``, ``None``: all valid) for
    ``qry [B, Q, 3]``; indices shifted by each cloud's ``offset [B]`` into the packed
    points, ``-1`` (distance ``inf``) past a cloud's points. Returns ``[B, Q, k]`` twice."""
    b, n = ref.shape[:2]
    q = qry.shape[1]
    kk = min(k, n)
    idx = torch.full((b, q, k), -1, dtype=torch.long, device=ref.device)
    dist = torch.full((b, q, k), float("inf"), dtype=ref.dtype, device=ref.device)
    if kk == 0 or q == 0:
        return idx, dist
    ref_sq = (ref * ref).sum(-1)  # [B, N]
    if ref_mask is not None:
        ref_sq = ref_sq.masked_fill(~ref_mask, float("inf"))
    clouds_per_chunk = max(1, _CHUNK_ELEMS // max(1, q * n))
    rows = max(1, _CHUNK_ELEMS // max(1, n))
    for b0 in range(0, b, clouds_per_chunk):
        b1 = min(b, b0 + clouds_per_chunk)
        for r0 in range(0, q, rows):
            r1 = min(q, r0 + rows)
            qc = qry[b0:b1, r0:r1]  # [b, r, 3]
            d = torch.baddbmm(ref_sq[b0:b1, None, :], qc, ref[b0:b1].transpose(1, 2),
                              alpha=-2)  # [b, r, N]
            d += (qc * qc).sum(-1, keepdim=True)
            val, ind = d.topk(kk, dim=-1, largest=False, sorted=True)  # [b, r, kk]
            val.clamp_(min=0)
            invalid = torch.isinf(val)
            ind = (ind + offset[b0:b1, None, None]).masked_fill_(invalid, -1)
            idx[b0:b1, r0:r1, :kk] = ind
            dist[b0:b1, r0:r1, :kk] = val
    return idx, dist


def _knn_open3d(pos, k, batch, query, query_batch, num_clouds):
    import open3d.core as o3c

    _, ptr = counts_and_ptr(batch, num_clouds)
    _, qptr = counts_and_ptr(query_batch, num_clouds)
    ref_np = pos.detach().float().contiguous().numpy()
    qry_np = query.detach().float().contiguous().numpy()
    idx = torch.full((query.shape[0], k), -1, dtype=torch.long)
    dist = torch.full((query.shape[0], k), float("inf"), dtype=pos.dtype)
    ptr_l, qptr_l = ptr.tolist(), qptr.tolist()
    for c in range(num_clouds):
        s, e, qs, qe = ptr_l[c], ptr_l[c + 1], qptr_l[c], qptr_l[c + 1]
        if e == s or qe == qs:
            continue
        kk = min(k, e - s)
        nns = o3c.nns.NearestNeighborSearch(o3c.Tensor.from_numpy(ref_np[s:e]))
        nns.knn_index()
        ind, d2 = nns.knn_search(o3c.Tensor.from_numpy(qry_np[qs:qe]), kk)
        idx[qs:qe, :kk] = torch.from_numpy(ind.numpy()).long() + s
        dist[qs:qe, :kk] = torch.from_numpy(d2.numpy()).to(pos.dtype)
    return idx, dist
