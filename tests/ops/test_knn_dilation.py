"""Dilated kNN (``knn(..., dilation=d)``): what it returns, and local blocks on it.

``dilation=d`` keeps ranks ``0, d, 2d, ..., (k-1)d`` of each query's sorted neighbour list
(DeepGCN's dilated kNN): the same ``K`` but a receptive field ``~d^(1/3)`` times wider.
"""

from __future__ import annotations

import pytest
import torch

from pcattn import ops
from pcattn.nn import GroupedVectorAttention, LocalSelfAttention
from helpers import points

BACKENDS = ["torch", "open3d"]


def brute_dilated(pos, k, d, batch, query, query_batch):
    """Ranks 0, d, ..., (k-1)d of the same-cloud neighbours sorted by distance, -1 padded."""
    dist = torch.cdist(query.double(), pos.double())  # [M_q, M]
    dist[query_batch[:, None] != batch[None, :]] = float("inf")
    order = dist.argsort(dim=1, stable=True)  # [M_q, M]
    out = torch.full((query.shape[0], k), -1, dtype=torch.long)
    for i in range(query.shape[0]):
        n = int((query_batch[i] == batch).sum())
        ranks = [r for r in range(0, k * d, d) if r < n]
        out[i, : len(ranks)] = order[i, ranks]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,k,d", [([40], 4, 2), ([30, 5, 17], 4, 3), ([25], 3, 1)])
def test_dilated_knn_matches_brute_force(backend, sizes, k, d):
    pos, batch = points(sizes)
    idx = ops.knn(pos, k, batch, dilation=d, backend=backend)
    assert idx.shape == (pos.shape[0], k)
    assert torch.equal(idx, brute_dilated(pos, k, d, batch, pos, batch))
    assert (idx[:, 0] == torch.arange(pos.shape[0])).all(), "rank 0 is the point itself"


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_cloud_pads_the_ranks_it_lacks(backend):
    pos, batch = points([20, 5])
    idx = ops.knn(pos, 4, batch, dilation=2, backend=backend)  # ranks 0, 2, 4, 6
    assert (idx[:20] >= 0).all()
    assert (idx[20:, :3] >= 20).all() and (idx[20:, 3] == -1).all()  # rank 6 >= 5 points


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_queries_with_dilation(backend):
    """Strided (FPS-sampled) centres can use dilated neighbourhoods too."""
    pos, batch = points([30, 12])
    s = ops.farthest_point_sample(pos, batch, ratio=0.25)
    idx = ops.knn(pos, 3, batch, query=pos[s], query_batch=batch[s], dilation=2,
                  backend=backend)
    assert torch.equal(idx, brute_dilated(pos, 3, 2, batch, pos[s], batch[s]))


def test_dilation_widens_the_neighbourhood_at_the_same_k():
    pos, batch = points([200])
    radius = []
    for d in (1, 2, 4):
        idx = ops.knn(pos, 8, batch, dilation=d)
        radius.append((pos[idx[:, -1]] - pos).norm(dim=-1).mean())
    assert radius[0] < radius[1] < radius[2]
    # dilation=d keeps every d-th of the k*d nearest
    assert torch.equal(ops.knn(pos, 8, batch, dilation=2), ops.knn(pos, 16, batch)[:, ::2])


@pytest.mark.parametrize("block", ["local", "grouped"])
def test_local_blocks_on_dilated_neighbourhoods(device, block):
    """A block on a dilated idx reads exactly those neighbours and stays per cloud."""
    pos, batch = points([24, 6])
    pos, batch = pos.to(device), batch.to(device)
    x = torch.randn(30, 4, device=device)
    if block == "local":
        layer = LocalSelfAttention(4, 8, heads=2).to(device)
    else:
        layer = GroupedVectorAttention(4, 8, heads=2).to(device)
    idx = ops.knn(pos, 4, batch, dilation=2)  # the 6-point cloud: ranks 0, 2, 4 and -1
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    assert out.shape == (30, 8) and (w[idx < 0] == 0).all() and (idx[24:, 3] == -1).all()
    alone = layer(x[24:], pos[24:], ops.knn(pos[24:], 4, dilation=2))
    torch.testing.assert_close(out[24:], alone, atol=1e-5, rtol=1e-5)
    # receptive field: out[i] depends on x exactly at its dilated neighbours (and itself)
    for i in (0, 25):
        xx = x.clone().requires_grad_()
        layer(xx, pos, idx)[i].sum().backward()
        touched = set(torch.nonzero(xx.grad.abs().sum(1)).flatten().tolist())
        assert touched == {i} | {j for j in idx[i].tolist() if j >= 0}
