"""Grid pooling and unpooling against loops over cells, and the coarse orders against a
fresh encoding of the coarse grid."""

from __future__ import annotations

import pytest
import torch

from pcattn.nn.serialized_pool import SerializedPooling, SerializedUnpooling, coarsen
from pcattn.ops import ORDERS, encode, grid_neighbors, serialize


def level(seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(80, 3, generator=g, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([50, 30]))
    x = torch.randn(80, 5, generator=g, dtype=torch.float64)
    return x, pos, batch, serialize(pos, batch, grid_size=0.1, bits=6)


def test_coarse_codes_are_the_codes_of_the_coarse_grid():
    """``code >> 3`` along every curve is the code of the cell twice as large: the
    nesting that lets pooling keep the orders without a new sort by a new curve."""
    _, _, batch, s = level()
    coarse, cluster, first = coarsen(s, neighbors=True)
    assert coarse.bits == 5 and torch.equal(coarse.grid_size, s.grid_size * 2)
    assert torch.equal(coarse.coords[cluster], s.coords >> 1)
    for o, name in enumerate(ORDERS):
        want = encode(s.coords[first] >> 1, batch[first], order=name, bits=5)
        assert torch.equal(coarse.code[o], want)
        assert (coarse.code[o][coarse.order[o]].diff() > 0).all()
    assert torch.equal(batch[first], coarse.batch)
    cell, neighbors = grid_neighbors(coarse.coords, coarse.batch, bits=5)
    assert torch.equal(coarse.cells[1][cell], neighbors[cell])
    again, _, _ = coarsen(coarse)
    assert again.bits == 4


def test_pooling_is_the_max_over_each_cell_and_unpooling_its_inverse_map():
    x, pos, batch, s = level(1)
    pool = SerializedPooling(5, 7).double()
    out, centre, coarse, cluster, first = pool(x, pos, s)
    h = pool.lin(x)
    for v in range(first.numel()):
        rows = (cluster == v).nonzero().view(-1)
        assert int(first[v]) in rows.tolist()
        want = torch.nn.functional.gelu(pool.norm(h[rows].amax(0)))
        torch.testing.assert_close(out[v], want)
        torch.testing.assert_close(centre[v], pos[rows].mean(0))
        assert (batch[rows] == coarse.batch[v]).all()  # cells never span two clouds
    unpool = SerializedUnpooling(7, 5).double()
    up = unpool(out, x, cluster)
    phi = torch.nn.functional.gelu
    want = phi(unpool.norm_skip(unpool.lin_skip(x))) + phi(unpool.norm(unpool.lin(out)))[cluster]
    torch.testing.assert_close(up, want)


def test_a_grid_of_one_bit_is_not_coarsened():
    _, pos, batch, _ = level()
    s = serialize(pos, batch, bits=1)
    with pytest.raises(ValueError, match="cannot be coarsened again"):
        coarsen(s)
