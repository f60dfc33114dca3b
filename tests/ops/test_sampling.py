"""Farthest point sampling: the max-min property, batching, ratio/num, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn import ops


def assert_farthest(pos, chosen):
    """Each chosen point (after the first) maximises the distance to those before it."""
    for s in range(1, len(chosen)):
        d = torch.cdist(pos.double(), pos[chosen[:s]].double()).min(dim=1).values  # [N]
        assert d[chosen[s]] >= d.max() - 1e-6, f"pick {s} is not the farthest"


@pytest.mark.parametrize("n,num", [(50, 10), (200, 32), (7, 7)])
def test_fps_max_min_property(n, num):
    pos = torch.rand(n, 3, generator=torch.Generator().manual_seed(n))
    idx = ops.farthest_point_sample(pos, num=num)
    assert idx.shape == (num,) and idx[0] == 0
    assert len(set(idx.tolist())) == num, "no point is chosen twice"
    assert_farthest(pos, idx)


def test_fps_batched_per_cloud_ratio(device):
    sizes = [40, 1, 17, 64]
    pos = torch.rand(sum(sizes), 3).to(device)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(sizes)).to(device)
    idx = ops.farthest_point_sample(pos, batch, ratio=0.25)
    expect = [math.ceil(0.25 * n) for n in sizes]
    assert torch.bincount(batch[idx], minlength=4).tolist() == expect
    start = 0
    for c, n in enumerate(sizes):
        sel = idx[batch[idx] == c]
        assert ((sel >= start) & (sel < start + n)).all()
        assert_farthest(pos[start:start + n].cpu(), (sel - start).cpu())
        start += n


def test_fps_num_larger_than_cloud_keeps_all():
    pos = torch.rand(5, 3)
    assert sorted(ops.farthest_point_sample(pos, num=9).tolist()) == list(range(5))


def test_fps_random_start_is_seeded():
    pos = torch.rand(100, 3)
    a = ops.farthest_point_sample(pos, num=8, random_start=True,
                                  generator=torch.Generator().manual_seed(1))
    b = ops.farthest_point_sample(pos, num=8, random_start=True,
                                  generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert_farthest(pos, a)


def test_fps_permutation_invariant_set():
    pos = torch.rand(80, 3)
    perm = torch.randperm(80)
    inv = torch.argsort(perm)
    a = ops.farthest_point_sample(pos, num=12)
    # start from the same physical point: put point 0 first in the permuted cloud
    perm = torch.cat([torch.tensor([0]), perm[perm != 0]])
    b = perm[ops.farthest_point_sample(pos[perm], num=12)]
    assert a.tolist() == b.tolist()
    del inv


def test_fps_errors():
    with pytest.raises(ValueError, match="exactly one"):
        ops.farthest_point_sample(torch.rand(5, 3))
    with pytest.raises(ValueError, match="ratio"):
        ops.farthest_point_sample(torch.rand(5, 3), ratio=1.5)
