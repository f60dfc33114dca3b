"""Farthest point sampling against a brute-force greedy reference, on both backends."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn import ops

BACKENDS = ["torch", "open3d"]


def brute_fps(pos: torch.Tensor, num: int, start: int | None = None) -> list[int]:
    """Greedy max-min selection in float64: each pick is farthest from the picks before;
    the first is the point farthest from the centroid unless ``start`` is given."""
    pos = pos.double()
    if start is None:
        start = int(((pos - pos.mean(0)) ** 2).sum(1).argmax())
    chosen = [start]
    dist = ((pos - pos[start]) ** 2).sum(1)
    for _ in range(min(num, len(pos)) - 1):
        far = int(dist.argmax())
        chosen.append(far)
        dist = torch.minimum(dist, ((pos - pos[far]) ** 2).sum(1))
    return chosen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,num", [(50, 10), (200, 32), (7, 7)])
def test_fps_matches_greedy_reference(backend, n, num):
    pos = torch.rand(n, 3, generator=torch.Generator().manual_seed(n))
    idx = ops.farthest_point_sample(pos, num=num, backend=backend)
    assert idx.shape == (num,)
    assert idx.tolist() == sorted(brute_fps(pos, num))


def test_reference_has_the_max_min_property():
    pos = torch.rand(60, 3, generator=torch.Generator().manual_seed(1))
    chosen = brute_fps(pos, 12)
    for s in range(1, len(chosen)):
        d = torch.cdist(pos, pos[chosen[:s]]).min(dim=1).values  # [N]
        assert d[chosen[s]] >= d.max() - 1e-6
    assert len(set(chosen)) == 12


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_batched_per_cloud_ratio(backend):
    sizes = [40, 1, 17, 64]
    pos = torch.rand(sum(sizes), 3)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(sizes))
    idx = ops.farthest_point_sample(pos, batch, ratio=0.25, backend=backend)
    expect = [math.ceil(0.25 * n) for n in sizes]
    assert torch.bincount(batch[idx], minlength=4).tolist() == expect
    start = 0
    for c, n in enumerate(sizes):
        sel = idx[batch[idx] == c] - start
        assert sel.tolist() == sorted(brute_fps(pos[start:start + n], expect[c]))
        start += n


def test_fps_on_device(device):
    pos = torch.rand(300, 3)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([100, 200]))
    idx = ops.farthest_point_sample(pos.to(device), batch.to(device), num=20)
    assert idx.device.type == device.type
    assert idx.cpu().tolist() == sorted(brute_fps(pos[:100], 20)) + sorted(
        [100 + i for i in brute_fps(pos[100:], 20)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_num_larger_than_cloud_keeps_all(backend):
    pos = torch.rand(5, 3)
    assert ops.farthest_point_sample(pos, num=9, backend=backend).tolist() == list(range(5))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_random_start_is_seeded(backend):
    pos = torch.rand(100, 3)
    a = ops.farthest_point_sample(pos, num=8, random_start=True, backend=backend,
                                  generator=torch.Generator().manual_seed(1))
    b = ops.farthest_point_sample(pos, num=8, random_start=True, backend=backend,
                                  generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    start = int(torch.rand(1, generator=torch.Generator().manual_seed(1)) * 100)
    assert a.tolist() == sorted(brute_fps(pos, 8, start))


def test_fps_permutation_selects_the_same_points():
    pos = torch.rand(80, 3)
    perm = torch.cat([torch.tensor([0]), 1 + torch.randperm(79)])  # same start point
    a = ops.farthest_point_sample(pos, num=12)
    b = perm[ops.farthest_point_sample(pos[perm], num=12)]
    assert a.tolist() == sorted(b.tolist())


def test_fps_errors():
    with pytest.raises(ValueError, match="exactly one"):
        ops.farthest_point_sample(torch.rand(5, 3))
    with pytest.raises(ValueError, match="ratio"):
        ops.farthest_point_sample(torch.rand(5, 3), ratio=1.5)
    with pytest.raises(ValueError, match="backend"):
        ops.farthest_point_sample(torch.rand(5, 3), num=2, backend="cuda")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_selects_the_same_points_whatever_their_order(backend):
    g = torch.Generator().manual_seed(3)
    pos = torch.rand(70, 3, generator=g)
    batch = torch.tensor([0] * 30 + [1] * 40)
    perm = torch.cat([torch.randperm(30, generator=g), 30 + torch.randperm(40, generator=g)])
    a = ops.farthest_point_sample(pos, batch, num=9, backend=backend)
    b = ops.farthest_point_sample(pos[perm], batch, num=9, backend=backend)
    assert sorted(a.tolist()) == sorted(perm[b].tolist())
