"""Packed <-> dense layouts and edge_index <-> neighbourhood conversions."""

from __future__ import annotations

import warnings

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


@pytest.mark.parametrize("batch, error, message", [
    (torch.zeros(2, 3, dtype=torch.long), ValueError,
     "batch must be a 1-D tensor with one cloud id per node (6), got shape (2, 3)"),
    (torch.zeros(1, 6, dtype=torch.long), ValueError,
     "batch must be a 1-D tensor with one cloud id per node (6), got shape (1, 6)"),
    (torch.zeros(5, dtype=torch.long), ValueError,
     "batch must be a 1-D tensor with one cloud id per node (6), got shape (5,)"),
    (torch.zeros(6), TypeError,
     "batch must hold integer cloud ids, got torch.float32; cast it with batch.long()"),
    (torch.zeros(6, dtype=torch.bool), TypeError,
     "batch must hold integer cloud ids, got torch.bool; cast it with batch.long()"),
    (torch.zeros(6, dtype=torch.complex64), TypeError,
     "batch must hold integer cloud ids, got torch.complex64; cast it with batch.long()"),
    (torch.tensor([0, 0, 1, 1, 0, 1]), ValueError,
     "batch must be sorted ascending (nodes of one cloud contiguous, as PyG's Batch makes "
     "them); sort the nodes with `perm = batch.argsort(stable=True)`"),
    (torch.tensor([-1, 0, 0, 0, 0, 0]), ValueError, "batch holds the cloud id -1; ids count from 0"),
])
def test_check_batch_messages_in_full(batch, error, message):
    with pytest.raises(error) as err:
        ops.unpack(torch.randn(6, 2), batch)
    assert str(err.value) == message


def test_check_batch_defaults_and_casts():
    from pcattn.ops.batching import check_batch

    assert check_batch(None, 3, torch.device("cpu")).tolist() == [0, 0, 0]
    out = check_batch(torch.tensor([0, 2, 2], dtype=torch.int32), 3, torch.device("cpu"))
    assert out.dtype == torch.long and out.tolist() == [0, 2, 2]


@pytest.mark.parametrize("idx, message", [
    (torch.zeros(3, 2, dtype=torch.long), "got (3, 2) torch.int64"),
    (torch.zeros(4, dtype=torch.long), "got (4,) torch.int64"),
    (torch.zeros(4, 2), "got (4, 2) torch.float32"),
])
def test_check_neighbors_messages_in_full(idx, message):
    with pytest.raises(ValueError) as err:
        ops.batching.check_neighbors(idx, 4)
    assert str(err.value) == ("idx must be an integer [M, K] tensor with M=4 rows, "
                              f"{message}; build it with pcattn.ops.knn(pos, k, batch)")


def test_check_neighbors_num_nodes_defaults_to_rows():
    from pcattn.ops.batching import check_neighbors

    idx = torch.tensor([[5, -1], [0, 9]])  # 2 query rows into 10 source nodes
    assert check_neighbors(idx, 2, 10) is None
    with pytest.raises(ValueError, match=r"idx holds 9, outside \[0, 2\) for 2 nodes"):
        check_neighbors(idx, 2)


def test_counts_and_ptr_with_trailing_empty_clouds_and_gaps():
    from pcattn.ops.batching import counts_and_ptr

    counts, ptr = counts_and_ptr(torch.tensor([0, 0, 2]))  # cloud 1 is empty
    assert counts.tolist() == [2, 0, 1] and ptr.tolist() == [0, 2, 2, 3]
    counts, ptr = counts_and_ptr(torch.tensor([0, 0, 1]), num_clouds=4)
    assert counts.tolist() == [2, 1, 0, 0] and ptr.tolist() == [0, 2, 3, 3, 3]


def test_unpack_num_clouds_max_nodes_and_fill():
    x = torch.arange(6.0).reshape(3, 2)
    dense, mask = ops.unpack(x, torch.tensor([0, 0, 1]), num_clouds=4, max_nodes=3,
                             fill_value=-7.0)
    assert dense.shape == (4, 3, 2) and mask.shape == (4, 3)
    assert mask.tolist() == [[True, True, False], [True, False, False],
                             [False] * 3, [False] * 3]
    assert dense[0, :2].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert dense[1, 0].tolist() == [4.0, 5.0]
    assert (dense[~mask] == -7.0).all()
    dense, mask = ops.unpack(x)  # no batch: one cloud
    assert torch.equal(dense, x[None]) and mask.all()


def test_pack_without_mask_keeps_every_slot():
    dense = torch.arange(12.0).reshape(2, 3, 2)
    x, batch = ops.pack(dense)
    assert x.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0],
                          [10.0, 11.0]]
    assert batch.tolist() == [0, 0, 0, 1, 1, 1]


def test_edge_index_to_neighbors_keeps_edge_order_of_many_edges():
    """Each target's sources in the order the edges were given (a stable sort), also for
    targets with many edges; the last nodes receive no edge."""
    g = torch.Generator().manual_seed(0)
    num_nodes, e = 8, 400
    dst = torch.randint(0, 5, (e,), generator=g)  # nodes 5, 6, 7 receive nothing
    src = torch.randint(0, num_nodes, (e,), generator=g)
    with warnings.catch_warnings():  # no deprecated resize of a cumsum out= of the wrong size
        warnings.simplefilter("error")
        idx = ops.edge_index_to_neighbors(torch.stack([src, dst]), num_nodes)
    expect = [[s for s, d in zip(src.tolist(), dst.tolist()) if d == t]
              for t in range(num_nodes)]
    k = max(len(r) for r in expect)
    assert idx.shape == (num_nodes, k)
    assert idx.tolist() == [r + [-1] * (k - len(r)) for r in expect]


def test_edge_index_to_neighbors_without_nodes_or_edges():
    none = torch.zeros(2, 0, dtype=torch.long)
    assert ops.edge_index_to_neighbors(none, 0).shape == (0, 0)
    assert ops.edge_index_to_neighbors(none, 3).tolist() == [[], [], []]
    assert ops.edge_index_to_neighbors(none, 2, k=2).tolist() == [[-1, -1], [-1, -1]]


def test_edge_index_to_neighbors_adds_each_self_loop_once_and_first():
    ei = torch.tensor([[1, 2, 0, 0, 3], [0, 0, 0, 2, 3]])  # loops at 0 and 3; 1 gets nothing
    idx = ops.edge_index_to_neighbors(ei, 4, add_self_loops=True)
    assert idx.tolist() == [[0, 1, 2], [1, -1, -1], [2, 0, -1], [3, -1, -1]]
    assert ops.edge_index_to_neighbors(ei, 4).tolist() == [[1, 2, 0], [-1, -1, -1],
                                                           [0, -1, -1], [3, -1, -1]]


@pytest.mark.parametrize("ei, error, message", [
    (torch.tensor([[0, 1, 2]]), ValueError,
     "edge_index must be [2, E] (row 0 source, row 1 target, as in PyG), got [1, 3]"),
    (torch.tensor([[0.0], [1.0]]), TypeError,
     "edge_index must hold integer node indices, got torch.float32; cast it with "
     "edge_index.long()"),
    (torch.tensor([[0, 3], [1, 1]]), ValueError,
     "edge_index holds 3, outside [0, 3) for 3 nodes"),
    (torch.tensor([[0, 1], [-1, 1]]), ValueError,
     "edge_index holds -1, outside [0, 3) for 3 nodes"),
])
def test_edge_index_to_neighbors_refuses_what_is_no_graph_of_the_nodes(ei, error, message):
    with pytest.raises(error) as err:
        ops.edge_index_to_neighbors(ei, 3)
    assert str(err.value) == message
