"""kNN and ball query against brute force and open3d's KD-tree, on both backends."""

from __future__ import annotations

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pcattn import ops
from helpers import points

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
    full = ops.knn(pos, 8, batch, backend="torch")
    knn_module = importlib.import_module("pcattn.ops.knn")
    monkeypatch.setattr(knn_module, "_CHUNK_ELEMS", 1000)  # forces many row chunks
    assert torch.equal(ops.knn(pos, 8, batch, backend="torch"), full)


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
