"""Packed <-> dense layouts and edge_index <-> neighbourhood conversions."""

from __future__ import annotations

import pytest
import torch

from pcattn import ops


def test_unpack_pack_roundtrip():
    x = torch.arange(12.0).reshape(6, 2)
    batch = torch.tensor([0, 0, 0, 1, 2, 2])
    dense, mask = ops.unpack(x, batch)
    assert dense.shape == (3, 3, 2)
    assert mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert torch.equal(dense[1, 0], x[3]) and (dense[1, 1:] == 0).all()
    packed, b = ops.pack(dense, mask)
    assert torch.equal(packed, x) and torch.equal(b, batch)


def test_unpack_matches_pyg_to_dense_batch():
    from torch_geometric.utils import to_dense_batch

    x = torch.randn(10, 4)
    batch = torch.tensor([0, 0, 1, 1, 1, 1, 3, 3, 3, 3])  # cloud 2 is empty
    dense, mask = ops.unpack(x, batch)
    ref, ref_mask = to_dense_batch(x, batch)
    assert torch.equal(dense, ref) and torch.equal(mask, ref_mask)


def test_unsorted_batch_is_a_clear_error():
    with pytest.raises(ValueError, match="sorted ascending"):
        ops.unpack(torch.randn(3, 2), torch.tensor([1, 0, 1]))


def test_neighbors_edge_index_roundtrip():
    idx = torch.tensor([[0, 2, -1], [1, 0, 2], [2, -1, -1]])
    ei = ops.neighbors_to_edge_index(idx)
    assert ei.tolist() == [[0, 2, 1, 0, 2, 2], [0, 0, 1, 1, 1, 2]]
    assert torch.equal(ops.edge_index_to_neighbors(ei, 3, k=3), idx)
    assert ops.edge_index_to_neighbors(ei, 3).shape == (3, 3)
    with pytest.raises(ValueError, match="k="):
        ops.edge_index_to_neighbors(ei, 3, k=2)


def test_edge_index_to_neighbors_isolated_node_and_order():
    ei = torch.tensor([[3, 1, 2], [0, 0, 2]])  # node 1 and 3 receive nothing
    idx = ops.edge_index_to_neighbors(ei, 4)
    assert idx.tolist() == [[3, 1], [-1, -1], [2, -1], [-1, -1]]


def test_gather_pads_with_zero_and_no_gradient(device):
    x = torch.randn(4, 3, device=device, requires_grad=True)
    idx = torch.tensor([[1, -1], [3, 0]], device=device)
    out = ops.gather(x, idx)
    assert out.shape == (2, 2, 3)
    assert (out[0, 1] == 0).all() and torch.equal(out[1, 0], x[3])
    out.sum().backward()
    assert x.grad[:, 0].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_gather_gradcheck():
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[0, 4, -1], [2, 2, 1]])
    assert torch.autograd.gradcheck(lambda a: ops.gather(a, idx), (x,))
