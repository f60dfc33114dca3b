"""``equal_clouds=B``: the layout of ``B`` clouds of equal size taken from the shapes (what
``torch.compile`` traces) gives what the general path gives, and a batch that is not that
layout is refused."""

from __future__ import annotations

import pytest
import torch

from pcattn.ops import farthest_point_sample, knn, knn_with_distance, unpack
from pcattn.ops.batching import equal_cloud_size


def _clouds(b=3, n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b * n, 3, generator=g)
    return pos, torch.arange(b).repeat_interleave(n)


@pytest.mark.parametrize("k", [4, 25])  # 25 > n: rows end in -1
def test_knn_matches_the_general_path(k):
    pos, batch = _clouds()
    for backend in ("torch", "auto"):
        want = knn_with_distance(pos, k, batch, backend=backend)
        got = knn_with_distance(pos, k, batch, backend=backend, equal_clouds=3)
        assert torch.equal(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])
    query, query_batch = pos[::2], batch[::2]  # 10 queries per cloud
    want = knn(pos, k, batch, query=query, query_batch=query_batch, backend="torch")
    got = knn(pos, k, batch, query=query, query_batch=query_batch, backend="torch",
              equal_clouds=3)
    assert torch.equal(got, want)


@pytest.mark.parametrize("kw", [{"ratio": 0.25}, {"num": 7}, {"num": 30}])
def test_farthest_point_sample_matches_the_general_path(kw):
    pos, batch = _clouds()
    for backend in ("torch", "auto"):
        want = farthest_point_sample(pos, batch, backend=backend, **kw)
        assert torch.equal(farthest_point_sample(pos, batch, backend=backend, equal_clouds=3,
                                                 **kw), want)
    pick = [farthest_point_sample(pos, batch, random_start=True, backend="torch",
                                  generator=torch.Generator().manual_seed(1), **layout, **kw)
            for layout in ({}, {"equal_clouds": 3})]
    assert torch.equal(pick[0], pick[1])


def test_unpack_is_a_reshape():
    pos, batch = _clouds()
    dense, mask = unpack(pos, batch, equal_clouds=3)
    want, want_mask = unpack(pos, batch)
    assert torch.equal(dense, want) and torch.equal(mask, want_mask)


def test_other_layouts_are_refused():
    pos, batch = _clouds()
    with pytest.raises(ValueError, match="cannot hold 60 nodes"):
        knn(pos, 4, batch, equal_clouds=7)
    with pytest.raises(ValueError, match="not 3 clouds of equal size"):
        knn(pos, 4, torch.cat([batch[1:], batch[-1:]]), equal_clouds=3)
    with pytest.raises(ValueError, match="not 2 clouds of equal size"):
        farthest_point_sample(pos, ratio=0.5, equal_clouds=2)  # batch None: one cloud
    with pytest.raises(ValueError, match="one cloud"):
        equal_cloud_size(None, 60, 2)
    with pytest.raises(ValueError, match="integer >= 1"):
        equal_cloud_size(batch, 60, 0)
    assert equal_cloud_size(None, 60, 1) == 60
    assert equal_cloud_size(batch.to("meta"), 60, 3) == 20  # no values to check


def test_a_traced_graph_asserts_the_layout():
    """Compiled, the layout is not read back but asserted when the graph runs."""
    pos, batch = _clouds()
    torch._dynamo.reset()
    search = torch.compile(lambda p, b: knn(p, 4, b, equal_clouds=3), backend="eager",
                           fullgraph=True)
    assert torch.equal(search(pos, batch), knn(pos, 4, batch))
    with pytest.raises(RuntimeError, match="not 3 clouds of equal size"):
        search(pos, torch.cat([batch[1:], batch[-1:]]))
