"""kNN and ball query against brute force and open3d's KD-tree, on both backends."""

from __future__ import annotations

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pcattn import ops
from helpers import points, record_calls

BACKENDS = ["torch", "open3d"]


def brute_knn(pos, k, batch, query, query_batch):
    """Reference: squared distances to the k nearest same-cloud points, inf-padded."""
    d = torch.cdist(query.double(), pos.double()) ** 2  # [M_q, M]
    d[query_batch[:, None] != batch[None, :]] = float("inf")
    kk = min(k, pos.shape[0])
    val = d.topk(kk, largest=False).values
    out = torch.full((query.shape[0], k), float("inf"), dtype=torch.float64)
    out[:, :kk] = val
    return out


def check_against_brute(idx, pos, k, batch, query, query_batch):
    ref = brute_knn(pos, k, batch, query, query_batch)
    valid = idx >= 0
    assert torch.equal(valid, torch.isfinite(ref)), "padding differs from the reference"
    got = torch.full_like(ref, float("inf"))
    got[valid] = ((query[:, None, :] - pos[idx.clamp(min=0)]).double() ** 2).sum(-1)[valid]
    torch.testing.assert_close(got[valid], ref[valid], atol=1e-5, rtol=1e-5)
    assert (batch[idx[valid]] == query_batch[:, None].expand_as(idx)[valid]).all()
    # sorted by distance within each row
    assert (got[:, 1:] >= got[:, :-1] - 1e-6).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,k", [([50], 8), ([30, 1, 70, 5], 16), ([300, 200], 4)])
def test_knn_matches_brute_force(backend, sizes, k):
    pos, batch = points(sizes)
    idx = ops.knn(pos, k, batch, backend=backend)
    assert idx.shape == (pos.shape[0], k) and idx.dtype == torch.long
    check_against_brute(idx, pos, k, batch, pos, batch)
    assert (idx[:, 0] == torch.arange(pos.shape[0])).all(), "each point finds itself first"


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_query_subset_and_padding(backend):
    pos, batch = points([40, 3, 25])
    sel = torch.tensor([0, 5, 39, 40, 41, 42, 50, 60])
    idx = ops.knn(pos, 6, batch, query=pos[sel] + 0.01, query_batch=batch[sel], backend=backend)
    check_against_brute(idx, pos, 6, batch, pos[sel] + 0.01, batch[sel])
    assert (idx[3:6, 3:] == -1).all(), "the 3-point cloud pads with -1"


def test_torch_backend_chunks_give_same_answer(monkeypatch):
    pos, batch = points([500, 300])
    knn_module = importlib.import_module("pcattn.ops.knn")
    monkeypatch.setattr(knn_module, "_CHUNK_ELEMS", 1000)  # forces many row chunks
    chunked = ops.knn(pos, 8, batch, backend="torch")
    check_against_brute(chunked, pos, 8, batch, pos, batch)  # before any unchunked run
    monkeypatch.undo()
    assert torch.equal(ops.knn(pos, 8, batch, backend="torch"), chunked)


def test_knn_matches_open3d_kdtree():
    o3d = pytest.importorskip("open3d")
    pos, _ = points([400], seed=3)
    idx = ops.knn(pos, 10, backend="torch")
    tree = o3d.geometry.KDTreeFlann(o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(pos.double().numpy())))
    for i in range(0, 400, 37):
        _, ref, _ = tree.search_knn_vector_3d(pos[i].double().numpy(), 10)
        assert set(idx[i].tolist()) == set(ref)


def test_knn_cuda_or_cpu_device(device):
    pos, batch = points([64, 20])
    idx = ops.knn(pos.to(device), 8, batch.to(device))
    assert idx.device.type == device.type
    check_against_brute(idx.cpu(), pos, 8, batch, pos, batch)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(1, 10), seed=st.integers(0, 10_000))
def test_knn_permutation_permutes_result(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 3, generator=g)
    perm = torch.randperm(n, generator=g)
    idx = ops.knn(pos, k, backend="torch")
    idx_p = ops.knn(pos[perm], k, backend="torch")
    # neighbour sets of point perm[i] in the original == mapped neighbours of i in permuted
    mapped = torch.where(idx_p >= 0, perm[idx_p.clamp(min=0)], -1)
    d_orig = torch.cdist(pos, pos)
    for i in range(n):
        a = d_orig[perm[i], idx[perm[i]][idx[perm[i]] >= 0]].sort().values
        b = d_orig[perm[i], mapped[i][mapped[i] >= 0]].sort().values
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ball_query_respects_radius(backend):
    pos, batch = points([200, 50])
    r = 0.15
    idx = ops.ball_query(pos, r, 12, batch, backend=backend)
    valid = idx >= 0
    d = (pos[:, None] - pos[idx.clamp(min=0)]).norm(dim=-1)
    assert (d[valid] <= r + 1e-6).all()
    # every in-radius point is found when fewer than k exist
    counts = ((torch.cdist(pos, pos) <= r - 1e-5) & (batch[:, None] == batch)).sum(1)
    few = counts < 12
    assert (valid.sum(1)[few] >= counts[few]).all()


def test_knn_errors():
    pos = torch.rand(10, 3)
    with pytest.raises(ValueError, match="sorted"):
        ops.knn(pos, 2, torch.tensor([0, 1] * 5))
    with pytest.raises(ValueError, match=r"\[M, 3\]"):
        ops.knn(torch.rand(10, 2), 2)
    with pytest.raises(ValueError, match="backend"):
        ops.knn(pos, 2, backend="faiss")
    with pytest.raises(ValueError, match="query_batch"):
        ops.knn(pos, 2, torch.tensor([0] * 5 + [1] * 5), query=pos[:3])


def loop_knn(pos, k, batch, query, query_batch, radius=None):
    """Reference by hand: per query, the same-cloud points sorted by squared distance
    (float64, Python loop), the first ``k`` (within ``radius``), ``-1`` / inf padded."""
    ref, qry = pos.double().tolist(), query.double().tolist()
    ids, qids = batch.tolist(), query_batch.tolist()
    idx, dist = [], []
    for q, c in zip(qry, qids):
        cand = sorted((sum((a - b) ** 2 for a, b in zip(q, ref[j])), j)
                      for j in range(len(ref)) if ids[j] == c)
        if radius is not None:
            cand = [(d, j) for d, j in cand if d <= radius * radius]
        cand = cand[:k]
        idx.append([j for _, j in cand] + [-1] * (k - len(cand)))
        dist.append([d for d, _ in cand] + [float("inf")] * (k - len(cand)))
    return (torch.tensor(idx, dtype=torch.long).reshape(-1, k),
            torch.tensor(dist, dtype=torch.float64).reshape(-1, k))


def _ids(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


def _assert_knn(pos, k, batch, query, query_batch, backend):
    idx, dist = ops.knn_with_distance(pos, k, batch, query=query, query_batch=query_batch,
                                      backend=backend)
    ref_idx, ref_dist = loop_knn(pos, k, batch, query, query_batch)
    assert torch.equal(idx, ref_idx)  # the same points, sorted, -1 exactly where none
    torch.testing.assert_close(dist.double(), ref_dist, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ref_sizes, query_sizes", [
    ([5, 4, 6, 5], [3, 0, 2]),  # the queries' last cloud comes before the references' last
    ([6, 0, 3], [2, 2, 8, 1]),  # a cloud id gap; clouds 1 and 3 have queries but no points
    ([0, 0, 4], [1, 1, 1]),
    ([4], [2, 1, 3]),  # two query clouds past the last reference cloud
    ([3, 1], [2]),  # the references' last cloud holds one point, no query in it
])
def test_knn_queries_and_references_in_different_clouds(backend, ref_sizes, query_sizes):
    pos, _ = points([sum(ref_sizes)], seed=1)
    query, _ = points([sum(query_sizes)], seed=2)
    _assert_knn(pos, 4, _ids(ref_sizes), query, _ids(query_sizes), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_edge_cases_by_hand(backend):
    pos, batch = points([6, 3], seed=4)
    one = torch.zeros(1, dtype=torch.long)
    _assert_knn(pos, 1, batch, pos, batch, backend)  # k=1: each point itself
    _assert_knn(pos, 5, batch, pos[7:8], one + 1, backend)  # a single query
    _assert_knn(pos, 3, batch, pos[:0], one[:0], backend)  # no queries
    _assert_knn(pos[:4], 7, one.expand(4), pos, batch * 0, backend)  # more queries than points
    small, small_batch = points([3, 2], seed=5)  # k larger than every cloud
    idx = ops.knn(small, 5, small_batch, backend=backend)
    assert torch.equal(idx, loop_knn(small, 5, small_batch, small, small_batch)[0])
    assert idx[:, 3:].eq(-1).all() and idx[3:, 2:].eq(-1).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_without_reference_points(backend):
    query = torch.rand(2, 3)
    idx, dist = ops.knn_with_distance(torch.zeros(0, 3), 3, query=query, backend=backend)
    assert idx.tolist() == [[-1] * 3] * 2 and torch.isinf(dist).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_with_distance_dtypes(backend):
    pos, batch = points([9, 7], seed=6)
    _, dist = ops.knn_with_distance(pos.double(), 3, batch, backend=backend)
    assert dist.dtype == torch.float64
    _, dist = ops.knn_with_distance(pos.half(), 3, batch, backend=backend)
    assert dist.dtype == torch.float32
    # float64 queries against float32 points: computed in the points' dtype
    query = pos[::3].double() + 0.01
    idx, dist = ops.knn_with_distance(pos, 4, batch, query=query, query_batch=batch[::3],
                                      backend=backend)
    assert dist.dtype == torch.float32
    assert torch.equal(idx, loop_knn(pos, 4, batch, query, batch[::3])[0])


@pytest.mark.parametrize("has_open3d", [True, False])
def test_auto_backend_is_open3d_on_cpu_when_importable(monkeypatch, has_open3d):
    if has_open3d:
        pytest.importorskip("open3d")
    knn_module = importlib.import_module("pcattn.ops.knn")
    monkeypatch.setattr(knn_module, "has_open3d", lambda: has_open3d)
    calls = record_calls(monkeypatch, knn_module, ["_knn_torch", "_knn_open3d"])
    pos, batch = points([10, 6])
    ops.knn(pos, 3, batch)
    ops.ball_query(pos, 0.5, 3, batch)
    ops.knn_with_distance(pos, 3, batch, backend="auto")
    assert calls == ["_knn_open3d" if has_open3d else "_knn_torch"] * 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_named_backend_is_the_one_run(monkeypatch, backend):
    knn_module = importlib.import_module("pcattn.ops.knn")
    calls = record_calls(monkeypatch, knn_module, ["_knn_torch", "_knn_open3d"])
    pos, batch = points([10, 6])
    ops.knn(pos, 3, batch, backend=backend)
    ops.ball_query(pos, 0.5, 3, batch, backend=backend)
    assert calls == [f"_knn_{backend}"] * 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_ball_query_matches_a_loop_over_points(backend):
    pos, batch = points([20, 0, 15], seed=7)  # a cloud id gap
    sel = torch.tensor([0, 3, 19, 20, 27, 34])
    query, query_batch = pos[sel] + 0.02, batch[sel]
    idx = ops.ball_query(pos, 0.3, 6, batch, query=query, query_batch=query_batch,
                         backend=backend)
    ref = loop_knn(pos, 6, batch, query, query_batch, radius=0.3)[0]
    assert torch.equal(idx, ref) and (ref == -1).any() and (ref[:, 1] >= 0).any()
    idx = ops.ball_query(pos, 0.3, 6, batch)  # every point queries its own cloud
    assert torch.equal(idx, loop_knn(pos, 6, batch, pos, batch, radius=0.3)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ball_query_keeps_points_exactly_on_the_radius(backend):
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [3, 0, 0]])
    idx = ops.ball_query(pos, 1.0, 5, backend=backend)
    rows = [sorted(j for j in row if j >= 0) for row in idx.tolist()]
    assert rows == [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [4]]
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4] and (idx[:, 3:] == -1).all()


@pytest.mark.parametrize("radius", [0, -1.0, float("inf"), float("nan"), None, True, "0.1"])
def test_ball_query_radius_message_in_full(radius):
    with pytest.raises(ValueError) as err:
        ops.ball_query(torch.rand(5, 3), radius, 2)
    assert str(err.value) == f"radius must be a finite number > 0, got {radius!r}"


@pytest.mark.parametrize("call, message", [
    (lambda p, b: ops.knn_with_distance(p, 0), "k must be an integer >= 1, got 0"),
    (lambda p, b: ops.knn(p, 2, b, query=p[:3]),
     "batch is given but query_batch is not: pass the cloud id of each query "
     "(query_batch [M_q])"),
    (lambda p, b: ops.knn(p, 2, query_batch=b), "query_batch given without query"),
    (lambda p, b: ops.knn(p, 2, backend="faiss"),
     "unknown backend 'faiss'; choose one of ('auto', 'torch', 'open3d')"),
    (lambda p, b: ops.knn(torch.empty(0, 3, device="meta"), 2, backend="open3d"),
     "backend='open3d' runs on CPU tensors only; use backend='torch' for tensors on meta"),
])
def test_knn_messages_in_full(call, message):
    pos, batch = points([5, 5])
    with pytest.raises(ValueError) as err:
        call(pos, batch)
    assert str(err.value) == message
