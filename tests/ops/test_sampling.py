"""Farthest point sampling against a brute-force greedy reference, on both backends."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from pcattn import ops
from helpers import record_calls

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_ratio_bounds(backend):
    sizes = [50, 30]
    pos = torch.rand(80, 3)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor(sizes))
    assert ops.farthest_point_sample(pos, batch, ratio=1.0, backend=backend).tolist() == \
        list(range(80))
    tiny = ops.farthest_point_sample(pos, batch, ratio=0.01, backend=backend)  # ceil -> 1
    assert tiny.tolist() == [brute_fps(pos[:50], 1)[0], 50 + brute_fps(pos[50:], 1)[0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", [{"num": 4}, {"ratio": 0.3}])
def test_fps_cloud_id_gap(backend, kw):
    pos = torch.rand(22, 3, generator=torch.Generator().manual_seed(4))
    batch = torch.tensor([0] * 10 + [2] * 12)  # cloud 1 has no points
    idx = ops.farthest_point_sample(pos, batch, backend=backend, **kw)
    take = [4, 4] if "num" in kw else [3, 4]
    assert idx.tolist() == sorted(brute_fps(pos[:10], take[0])) + sorted(
        10 + i for i in brute_fps(pos[10:], take[1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_without_points(backend):
    idx = ops.farthest_point_sample(torch.zeros(0, 3), num=3, backend=backend)
    assert idx.dtype == torch.long and idx.tolist() == []


def test_fps_without_points_on_device(device):
    idx = ops.farthest_point_sample(torch.zeros(0, 3, device=device), ratio=0.5)
    assert idx.device.type == device.type and idx.shape == (0,)


def test_fps_torch_distances_in_float64():
    """Two candidates whose distances to the chosen set differ by 2e-10: float32 cannot tell
    them apart (the first index would win), float64 picks the farther (index 3)."""
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.5, 0.1, 0], [0.5, 0.1 + 1e-9, 0]],
                       dtype=torch.float64)
    assert brute_fps(pos, 3) == [0, 1, 3]
    assert ops.farthest_point_sample(pos, num=3, backend="torch").tolist() == [0, 1, 3]


@pytest.mark.parametrize("has_open3d, backend, expect", [
    (True, "auto", "_fps_open3d"), (False, "auto", "_fps_torch"),
    (True, "torch", "_fps_torch"), (True, "open3d", "_fps_open3d"),
])
def test_fps_backend_that_runs(monkeypatch, has_open3d, backend, expect):
    """``auto`` is open3d on the CPU when it imports, else torch; a named backend runs."""
    if expect == "_fps_open3d":
        pytest.importorskip("open3d")
    sampling = importlib.import_module("pcattn.ops.sampling")
    monkeypatch.setattr(sampling, "has_open3d", lambda: has_open3d)
    calls = record_calls(monkeypatch, sampling, ["_fps_torch", "_fps_open3d"])
    pos = torch.rand(20, 3)
    assert ops.farthest_point_sample(pos, num=4, backend=backend).tolist() == sorted(
        brute_fps(pos, 4))
    assert calls == [expect]


@pytest.mark.parametrize("call, message", [
    (lambda p: ops.farthest_point_sample(p), "give exactly one of ratio= or num="),
    (lambda p: ops.farthest_point_sample(p, ratio=0.5, num=2),
     "give exactly one of ratio= or num="),
    (lambda p: ops.farthest_point_sample(p, ratio=0), "ratio must be in (0, 1], got 0"),
    (lambda p: ops.farthest_point_sample(p, ratio=1.5), "ratio must be in (0, 1], got 1.5"),
    (lambda p: ops.farthest_point_sample(p, ratio=True), "ratio must be in (0, 1], got True"),
    (lambda p: ops.farthest_point_sample(p, num=2, backend="cuda"),
     "unknown backend 'cuda'; choose 'auto', 'torch' or 'open3d'"),
    (lambda p: ops.farthest_point_sample(p.to("meta"), num=2, backend="open3d"),
     "backend='open3d' runs on CPU tensors only; use backend='torch'"),
])
def test_fps_messages_in_full(call, message):
    with pytest.raises(ValueError) as err:
        call(torch.rand(5, 3))
    assert str(err.value) == message


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("distinct, copies, num", [(5, 60, 20), (1, 10, 4), (3, 4, 12),
                                                   (8, 3, 9)])
def test_fps_with_copies_of_points_keeps_num_different_rows(backend, distinct, copies, num):
    g = torch.Generator().manual_seed(distinct)
    pos = torch.rand(distinct, 3, generator=g).repeat(copies, 1)  # [distinct * copies, 3]
    idx = ops.farthest_point_sample(pos, num=num, backend=backend)
    assert idx.shape == (num,) and idx.unique().numel() == num  # no row twice
    covered = {tuple(p) for p in pos[idx].tolist()}
    assert len(covered) == min(distinct, num)  # every position before any copy


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_with_copies_in_a_batch(backend):
    a = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)).repeat(10, 1)  # 4 distinct
    b = torch.rand(30, 3, generator=torch.Generator().manual_seed(1))
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([40, 30]))
    idx = ops.farthest_point_sample(torch.cat([a, b]), batch, ratio=0.25, backend=backend)
    assert torch.bincount(batch[idx]).tolist() == [10, 8] and idx.unique().numel() == 18
    assert idx[10:].tolist() == sorted(40 + i for i in brute_fps(b, 8))
