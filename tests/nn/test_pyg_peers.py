"""Each swap of docs/blocks.md "Coming from PyG" against the PyG layer itself: same weights,
same graph, same numbers (float64), PyG's self-loop semantics, and PyG's weights loaded."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, PointTransformerConv, TransformerConv

from pcattn import ops
from pcattn.nn import GraphAttention, LocalSelfAttention, PointTransformerLayer

F64 = dict(rtol=1e-6, atol=1e-6)


def inputs(m=40, c=6, e=160, seed=0, edge_dim=None):
    """Features, positions, a random graph (with a few self loops, repeated edges and a
    node with no incoming edge) and edge features, in float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, c, generator=g, dtype=torch.float64)
    pos = torch.rand(m, 3, generator=g, dtype=torch.float64)
    src = torch.randint(0, m, (e,), generator=g)
    dst = torch.randint(0, m - 1, (e,), generator=g)
    ei = torch.cat([torch.stack([src, dst]), torch.tensor([[3, 5], [3, 5]])], 1)
    attr = None if edge_dim is None else torch.randn(ei.shape[1], edge_dim, generator=g,
                                                      dtype=torch.float64)
    return x, pos, ei, attr


@pytest.mark.parametrize("add_self_loops", [True, False])
def test_point_transformer_conv_swap(add_self_loops):
    torch.manual_seed(0)
    x, pos, ei, _ = inputs()
    conv = PointTransformerConv(6, 16, add_self_loops=add_self_loops).double()
    ours = PointTransformerLayer(6, 16, pos_nn=nn.Linear(3, 16), attn_nn=nn.Identity(),
                                 add_self_loops=add_self_loops).double()
    ours.load_state_dict(conv.state_dict())
    want = conv(x, pos, ei)
    torch.testing.assert_close(ours(x, pos, edge_index=ei), want, **F64)
    torch.testing.assert_close(PointTransformerLayer.from_pyg(conv)(x, pos, edge_index=ei),
                               want, **F64)


def test_point_transformer_conv_with_its_own_sub_networks():
    torch.manual_seed(0)
    x, pos, ei, _ = inputs()
    pos_nn = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 16))
    attn_nn = nn.Sequential(nn.Linear(16, 16), nn.Tanh())
    conv = PointTransformerConv(6, 16, pos_nn=pos_nn, attn_nn=attn_nn).double()
    ours = PointTransformerLayer.from_pyg(conv)
    torch.testing.assert_close(ours(x, pos, edge_index=ei), conv(x, pos, ei), **F64)
    assert ours.pos_nn is not conv.pos_nn  # copies: training one leaves the other


@pytest.mark.parametrize("kw", [
    dict(),
    dict(concat=False),
    dict(edge_dim=5),
    dict(edge_dim=5, fill_value=0.5),
    dict(share_weights=True, residual=True),
    dict(add_self_loops=False, bias=False),
])
def test_gatv2_conv_swap_and_weights(kw):
    torch.manual_seed(0)
    x, _, ei, attr = inputs(edge_dim=kw.get("edge_dim"))
    conv = GATv2Conv(6, 4, heads=3, **kw).double()
    width = 4 if kw.get("concat") is False else 12
    want = conv(x, ei, attr)
    ours = GraphAttention(6, width, heads=3, **{"add_self_loops": True, **kw}).double()
    ours.load_state_dict(conv.state_dict())  # lin_l / lin_r are lin_src / lin_dst here
    torch.testing.assert_close(ours(x, ei, attr), want, **F64)
    torch.testing.assert_close(GraphAttention.from_pyg(conv)(x, ei, attr), want, **F64)


def test_gatv2_attention_weights_are_pygs_on_the_graph_with_self_loops():
    torch.manual_seed(0)
    x, _, ei, _ = inputs()
    conv = GATv2Conv(6, 4, heads=3).double()
    _, (pyg_ei, pyg_alpha) = conv(x, ei, return_attention_weights=True)
    _, amap = GraphAttention.from_pyg(conv)(x, ei, return_attention=True)
    assert torch.equal(amap.edge_index, pyg_ei)
    torch.testing.assert_close(amap.weight, pyg_alpha, **F64)


def test_gatv2_bipartite_and_float32_weights():
    torch.manual_seed(0)
    x, _, ei, _ = inputs()
    x_dst = torch.randn(39, 5, dtype=torch.float64)
    conv = GATv2Conv((6, 5), 4, heads=2, add_self_loops=False).double()
    ours = GraphAttention.from_pyg(conv)
    torch.testing.assert_close(ours((x, x_dst), ei), conv((x, x_dst), ei), **F64)
    conv32 = GATv2Conv(6, 4, heads=2)
    assert GraphAttention.from_pyg(conv32).lin_src.weight.dtype == torch.float32


def test_gatv2_weights_into_a_layer_of_pyg_widths_name_the_width_to_build():
    conv = GATv2Conv(16, 4, heads=4)
    with pytest.raises(ValueError) as err:
        GraphAttention(16, 4, heads=4).load_state_dict(conv.state_dict())
    assert str(err.value) == (
        "GraphAttention: the state_dict has 4 heads of 4 channels (GATv2Conv(..., 4, "
        "heads=4)); this layer has 4 of 1: out_channels is the whole output width here, so "
        "build GraphAttention(16, 16, heads=4), or use GraphAttention.from_pyg")


def test_gatv2_weights_load_into_a_layer_inside_a_network():
    conv = GATv2Conv(6, 4, heads=3)
    net = nn.Sequential(GraphAttention(6, 12, heads=3))
    net.load_state_dict({f"0.{k}": v for k, v in conv.state_dict().items()})
    assert torch.equal(net[0].lin_dst.weight, conv.lin_r.weight)
    # our own state_dict still round-trips, and PyG's loads after a deepcopy or a pickle
    for again in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        again.load_state_dict(net.state_dict())
        again.load_state_dict({f"0.{k}": v for k, v in conv.state_dict().items()})
        assert torch.equal(again[0].lin_src.weight, conv.lin_l.weight)


@pytest.mark.parametrize("bias", [True, False])
def test_transformer_conv_swap(bias):
    """``TransformerConv`` with the relative position as its edge feature is
    ``LocalSelfAttention`` with a linear ``pos_nn`` and an identity output map."""
    torch.manual_seed(0)
    x, pos, ei, _ = inputs()
    ei = ops.neighbors_to_edge_index(ops.edge_index_to_neighbors(ei, 40, add_self_loops=True))
    conv = TransformerConv(6, 4, heads=3, edge_dim=3, root_weight=False, bias=bias).double()
    ours = LocalSelfAttention(6, 12, heads=3, pos_nn=nn.Linear(3, 12, bias=False),
                              bias=bias).double()
    with torch.no_grad():
        for a, b in [("lin_q", "lin_query"), ("lin_k", "lin_key"), ("lin_v", "lin_value"),
                     ("pos_nn", "lin_edge")]:
            getattr(ours, a).load_state_dict(getattr(conv, b).state_dict())
        ours.lin_out.weight.copy_(torch.eye(12))
        ours.lin_out.bias.zero_()
    edge_attr = pos[ei[1]] - pos[ei[0]]  # p_i - p_j: target minus source
    torch.testing.assert_close(ours(x, pos, edge_index=ei),
                               conv(x, ei, edge_attr), **F64)


def test_global_pools_are_pygs():
    from torch_geometric.nn import global_max_pool as pyg_max, global_mean_pool as pyg_mean

    from pcattn.nn import global_max_pool, global_mean_pool

    x = torch.randn(10, 4, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3, 3])  # cloud 2 is empty
    torch.testing.assert_close(global_mean_pool(x, batch), pyg_mean(x, batch), rtol=0, atol=0)
    ours, ref = global_max_pool(x, batch), pyg_max(x, batch)
    torch.testing.assert_close(ours[[0, 1, 3]], ref[[0, 1, 3]], rtol=0, atol=0)
    assert (ours[2] == float("-inf")).all() and (ref[2] == 0).all()  # as blocks.md says


def test_gatv2_habit_of_return_attention_weights_names_the_flag():
    x, _, ei, _ = inputs()
    with pytest.raises(TypeError) as err:
        GraphAttention(6, 12, heads=3).double()(x, ei, return_attention_weights=True)
    assert str(err.value) == (
        "GraphAttention: return_attention_weights is GATv2Conv's flag; pass "
        "return_attention=True, which returns (out, AttentionMap) whose edge_index and weight "
        "are PyG's (edge_index, alpha)")
