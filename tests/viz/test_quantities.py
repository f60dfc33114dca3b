"""Maps, received attention and rollout against dense references written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from vizhelpers import local_layer, random_local, two_stage

from pcattn.models import create_model
from pcattn.nn.attention_map import AttentionMap, LayerAttention
from pcattn.viz import (
    attention_map,
    attention_received,
    attention_rollout,
    colorize,
    parse_query,
    rollout_matrix,
)


def dense_local(weight, idx, n, nodes=None):
    """The [n, n] matrix of a local map (mean over heads), filled entry by entry."""
    nodes = torch.arange(n) if nodes is None else nodes
    a = np.zeros((n, n))
    for i in range(idx.shape[0]):
        for k in range(idx.shape[1]):
            if idx[i, k] >= 0:
                a[nodes[i], nodes[idx[i, k]]] += float(weight[i, k].mean())
    return a


def test_top_weighted_neighbour_gets_the_top_colour():
    idx, w, nodes = random_local(10, 4, 3)
    layers = [local_layer("l", w, idx, nodes)]
    pos = torch.rand(10, 3)
    q = 7
    values = attention_map(layers, pos, torch.tensor([q]))
    mean = w[q].mean(dim=1)  # [K]
    top = int(idx[q, mean.argmax()])
    colours = colorize(values)
    from matplotlib import colormaps

    viridis = colormaps["viridis"]
    assert np.allclose(colours[top], viridis(1.0)[:3])
    others = [int(j) for j in idx[q] if int(j) != top]
    assert all(not np.allclose(colours[j], viridis(1.0)[:3]) for j in others)
    unread = sorted(set(range(10)) - {int(j) for j in idx[q]})
    assert np.allclose(colours[unread], viridis(0.0)[:3])
    assert torch.allclose(values[idx[q]], mean)
    # with the query left out of the scale, the top neighbour other than it gets the top
    others = [(float(m), int(j)) for m, j in zip(mean, idx[q]) if int(j) != q]
    second = max(others)[1]
    assert np.allclose(colorize(values, exclude=torch.tensor([q]))[second], viridis(1.0)[:3])


def test_map_of_one_head():
    idx, w, nodes = random_local(10, 4, 3)
    values = attention_map([local_layer("l", w, idx, nodes)], torch.rand(10, 3),
                           torch.tensor([2]), head=1)
    assert torch.allclose(values[idx[2]], w[2, :, 1])
    assert values.sum() == pytest.approx(float(w[2, :, 1].sum()))


def test_map_of_a_downsampled_stage_snaps_the_query_and_stays_on_its_nodes():
    layers, pos = two_stage()
    sampled = layers[1].query_index
    pos[1] = pos[5] + 1e-3  # point 1 (not sampled) sits next to sampled point 5
    values = attention_map(layers, pos, torch.tensor([1]), layer="stage2.global")
    a = layers[1].map.weight[0].mean(0)  # [4, 4]
    expect = torch.zeros(8)
    expect[sampled] = a[2]  # node 2 of the stage is input point 5
    assert torch.allclose(values, expect)


def test_received_is_column_sums():
    idx, w, nodes = random_local(10, 4, 2)
    values = attention_received([local_layer("l", w, idx, nodes)], 10)
    assert np.allclose(values.numpy(), dense_local(w, idx, 10).sum(0), atol=1e-6)


def test_rollout_of_one_block_is_attention_plus_identity_normalised():
    idx, _, nodes = random_local(6, 3, 2)
    idx[0, 2] = -1  # padding
    w = torch.rand(6, 3, 2)  # rows deliberately not normalised
    r = rollout_matrix([local_layer("l", w, idx, nodes)], 6).to_dense().numpy()
    a = dense_local(w, idx, 6) + np.eye(6)
    assert np.allclose(r, a / a.sum(1, keepdims=True), atol=1e-6)
    assert np.allclose(r.sum(1), 1.0, atol=1e-6)


def test_rollout_across_a_downsampling_matches_the_dense_product():
    layers, _ = two_stage()
    idx, w = layers[0].map.idx, layers[0].map.weight
    s1 = 0.5 * dense_local(w, idx, 8) + 0.5 * np.eye(8)
    a2 = layers[1].map.weight[0].mean(0).numpy()  # [4, 4]
    sampled = layers[1].query_index.tolist()
    s2 = np.eye(8)
    for a, i in enumerate(sampled):
        s2[i] = 0.0
        s2[i, i] = 0.5
        for b, j in enumerate(sampled):
            s2[i, j] += 0.5 * a2[a, b]
    r = rollout_matrix(layers, 8)
    assert r.is_sparse
    assert np.allclose(r.to_dense().numpy(), s2 @ s1, atol=1e-6)
    assert np.allclose(rollout_matrix(layers, 8, layer=0).to_dense().numpy(), s1, atol=1e-6)


def test_global_rollout_equals_the_dense_product_without_residual():
    g = torch.Generator().manual_seed(1)
    w1 = torch.softmax(torch.randn(1, 3, 5, 5, generator=g), -1)
    w2 = torch.softmax(torch.randn(1, 3, 5, 5, generator=g), -1)
    nodes = torch.arange(5)
    layers = [LayerAttention(f"g{i}", AttentionMap("global", w), nodes, nodes, False)
              for i, w in enumerate((w1, w2))]
    expect = w2[0].mean(0).numpy() @ w1[0].mean(0).numpy()
    assert np.allclose(rollout_matrix(layers, 5).to_dense().numpy(), expect, atol=1e-6)
    row = attention_rollout(layers, torch.rand(5, 3), torch.tensor([3]))
    assert np.allclose(row.numpy(), expect[3], atol=1e-6)


def test_rollout_to_a_pool_is_its_weights_through_the_rollout_before_it():
    layers, pos = two_stage()
    sampled = layers[1].query_index
    w = torch.softmax(torch.randn(4, 1), dim=0)  # one cloud pools the 4 sampled points
    pool = LayerAttention("pool", AttentionMap("pool", w, batch=torch.zeros(4, dtype=torch.long)),
                          torch.zeros(1, dtype=torch.long), sampled, residual=False)
    layers = [*layers, pool]
    pooled = np.zeros(8)
    pooled[sampled.numpy()] = w[:, 0].numpy()
    expect = pooled @ rollout_matrix(layers, 8, layer=1).to_dense().numpy()
    assert np.allclose(attention_rollout(layers, pos, None, layer=2).numpy(), expect, atol=1e-6)
    assert np.allclose(attention_map(layers, pos, None, layer="pool").numpy(), pooled)
    assert expect.sum() == pytest.approx(1.0, abs=1e-5)
    assert rollout_matrix(layers, 8).to_dense().allclose(rollout_matrix(layers, 8, 1).to_dense())


def test_out_of_range_choices_name_the_valid_range():
    layers, pos = two_stage()
    with pytest.raises(ValueError, match=r"0\.\.1"):
        attention_map(layers, pos, torch.tensor([0]), layer=2)
    with pytest.raises(ValueError, match="stage1.local"):
        attention_map(layers, pos, torch.tensor([0]), layer="stage9")
    with pytest.raises(ValueError, match=r"heads 0\.\.1"):
        attention_map(layers, pos, torch.tensor([0]), head=2)
    with pytest.raises(ValueError, match=r"points 0\.\.7"):
        parse_query("8", pos)
    with pytest.raises(ValueError, match=r"1\.\.8"):
        parse_query("fps:0", pos)
    with pytest.raises(ValueError, match="fps:4"):
        parse_query("center", pos)
    with pytest.raises(ValueError, match="three coordinates"):
        parse_query("xyz:1,2", pos)


def test_query_forms():
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.1, 0.1, 0.1]])
    assert parse_query("xyz:0.9,0.1,0", pos).tolist() == [1]
    assert parse_query("-1", pos).tolist() == [4]
    q = parse_query("fps:4", pos)
    assert len(set(q.tolist())) == 4 and 4 not in q.tolist()  # the spread-out corners


def test_point_transformer_rollout_is_sparse_and_row_stochastic():
    model = create_model("point_transformer_cls", num_classes=3, channels=(8, 16),
                         blocks=(1, 1), k=6, head_hidden=(8,)).eval()
    g = torch.Generator().manual_seed(0)
    data = Data(pos=torch.rand(64, 3, generator=g))
    with torch.no_grad():
        layers = model.forward_features(Batch.from_data_list([data]),
                                        return_attention=True)["attention"]
    assert [la.query_index.numel() for la in layers] == [64, 16]
    r = rollout_matrix(layers, 64)
    assert torch.allclose(torch.sparse.sum(r, 1).to_dense(), torch.ones(64), atol=1e-5)
    assert r._nnz() < 64 * 64 // 2
    values = attention_map(layers, data.pos, torch.tensor([5]), layer=0)
    assert int((values > 0).sum()) == 6
