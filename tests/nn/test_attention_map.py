"""AttentionMap.to_sparse against triples written out by hand."""

import pytest
import torch

from pcattn.nn.attention_map import AttentionMap


def triples(q, s, w):
    return sorted(zip(q.tolist(), s.tolist(), w.tolist()))


def test_local_map_drops_padding():
    idx = torch.tensor([[1, 0], [0, -1]])
    w = torch.tensor([[[0.75], [0.25]], [[1.0], [0.0]]])
    got = AttentionMap("local", w, idx=idx).to_sparse()
    assert triples(*got) == [(0, 0, [0.25]), (0, 1, [0.75]), (1, 0, [1.0])]


def test_global_map_uses_packed_indices_and_skips_padded_nodes():
    # cloud 0 has nodes 0, 1; cloud 1 has node 2 (padded to N_max=2)
    w = torch.zeros(2, 1, 2, 2)
    w[0, 0] = torch.tensor([[0.6, 0.4], [0.1, 0.9]])
    w[1, 0, 0, 0] = 1.0
    mask = torch.tensor([[True, True], [True, False]])
    got = AttentionMap("global", w, mask=mask).to_sparse()
    assert triples(*[t if t.dim() == 1 else t for t in got]) == [
        (0, 0, [pytest.approx(0.6)]), (0, 1, [pytest.approx(0.4)]),
        (1, 0, [pytest.approx(0.1)]), (1, 1, [pytest.approx(0.9)]), (2, 2, [1.0])]
    assert AttentionMap("global", w, mask=mask).heads == 1


def test_graph_map_rows_are_targets():
    edge_index = torch.tensor([[0, 2], [1, 1]])  # 0 -> 1, 2 -> 1
    w = torch.tensor([[0.25, 0.5], [0.75, 0.5]])
    q, s, wt = AttentionMap("graph", w, edge_index=edge_index).to_sparse()
    assert q.tolist() == [1, 1] and s.tolist() == [0, 2] and wt.shape == (2, 2)


def test_pool_map_queries_are_clouds_and_channel_map_refuses():
    w = torch.tensor([[0.5], [0.5], [1.0]])
    q, s, _ = AttentionMap("pool", w, batch=torch.tensor([0, 0, 1])).to_sparse()
    assert q.tolist() == [0, 0, 1] and s.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="channel"):
        AttentionMap("channel", torch.ones(2, 8)).to_sparse()


def test_a_transposed_global_map_gives_the_receiving_column_as_query():
    w = torch.tensor([[[[0.0, 0.25], [1.0, 0.75]]]])  # w[i, j]: node j receives sum_i w[i, j]
    q, s, wt = AttentionMap("global", w, transposed=True).to_sparse()
    assert triples(q, s, wt) == [(0, 0, [0.0]), (0, 1, [1.0]), (1, 0, [0.25]), (1, 1, [0.75])]


def test_pool_map_without_batch_is_one_cloud():
    """A pool map built without batch: every node pools into cloud 0."""
    w = torch.rand(4, 2)
    query, source, weight = AttentionMap("pool", w).to_sparse()
    assert query.dtype == torch.long and source.dtype == torch.long
    assert query.tolist() == [0, 0, 0, 0] and source.tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(weight, w)


def test_patch_map_pairs_the_slots_of_each_patch_and_drops_padding():
    idx = torch.tensor([[2, 0], [1, -1]])  # patch 0: nodes 2, 0; patch 1: node 1, padded
    w = torch.tensor([[[[0.5, 0.5], [0.25, 0.75]]], [[[1.0, 0.0], [0.0, 0.0]]]])  # [2, 1, 2, 2]
    amap = AttentionMap("patch", w, idx=idx)
    assert amap.heads == 1
    assert triples(*amap.to_sparse()) == [(0, 0, [0.75]), (0, 2, [0.25]), (1, 1, [1.0]),
                                          (2, 0, [0.5]), (2, 2, [0.5])]
