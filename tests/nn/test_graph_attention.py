"""GraphAttention: number-for-number equal to PyG's GATv2Conv, on kNN and mesh graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GATv2Conv
from torch_geometric.utils import add_self_loops, remove_self_loops, to_undirected

from pcattn.nn import GraphAttention
from pcattn.ops import knn, neighbors_to_edge_index


def knn_graph(sizes, k, c, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g, dtype=dtype).to(device)
    x = torch.randn(sum(sizes), c, generator=g, dtype=dtype).to(device)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(device)
    edge_index = neighbors_to_edge_index(knn(pos, k, batch))  # [2, E], self loops included
    return x, pos, batch, edge_index


def octahedron(device):
    """A closed triangle mesh: 6 vertices, 8 faces, 12 undirected edges."""
    pos = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                       dtype=torch.float32, device=device)
    faces = torch.tensor([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5],
                          [3, 1, 5], [0, 3, 5]], device=device)
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).T  # [2, 24]
    return pos, to_undirected(e)


def rel_pos(pos, edge_index):
    return pos[edge_index[0]] - pos[edge_index[1]]  # [E, 3]: p_j - p_i


def pyg_twin(layer: GraphAttention, **kw) -> GATv2Conv:
    """A GATv2Conv holding the same weights (per-head width = out_channels // heads)."""
    conv = GATv2Conv(layer.in_channels, layer.head_channels, heads=layer.heads,
                     concat=layer.concat, edge_dim=layer.edge_dim,
                     share_weights=layer.share_weights, residual=layer.res is not None,
                     negative_slope=layer.negative_slope, **kw)
    with torch.no_grad():
        conv.lin_l.weight.copy_(layer.lin_src.weight)
        conv.lin_l.bias.copy_(layer.lin_src.bias)
        conv.lin_r.weight.copy_(layer.lin_dst.weight)
        conv.lin_r.bias.copy_(layer.lin_dst.bias)
        conv.att.copy_(layer.att)
        conv.bias.copy_(layer.bias)
        if layer.lin_edge is not None:
            conv.lin_edge.weight.copy_(layer.lin_edge.weight)
        if layer.res is not None:
            conv.res.weight.copy_(layer.res.weight)
    return conv


@pytest.mark.parametrize("concat,edge_dim,residual,share", [
    (True, None, False, False), (False, None, False, False), (True, 3, True, False),
    (False, 3, False, True),
])
def test_matches_gatv2conv(device, concat, edge_dim, residual, share):
    x, pos, batch, edge_index = knn_graph([12, 5], 4, 6, device)
    layer = GraphAttention(6, 8, heads=2, concat=concat, edge_dim=edge_dim, residual=residual,
                           share_weights=share).to(device)
    with torch.no_grad():
        layer.bias.normal_()  # a non-zero bias, so copying it is checked too
    conv = pyg_twin(layer, add_self_loops=False).to(device)
    ea = rel_pos(pos, edge_index) if edge_dim else None
    out, alpha = layer(x, edge_index, edge_attr=ea, return_attention=True)
    alpha = alpha.weight
    ref, (ref_ei, ref_alpha) = conv(x, edge_index, ea, return_attention_weights=True)
    assert out.shape == (17, 8) and alpha.shape == (edge_index.shape[1], 2)
    assert torch.equal(ref_ei, edge_index)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-5, rtol=1e-5)


def test_matches_gatv2conv_self_loops_on_a_mesh(device):
    """PyG's default self loops (fill 'mean') are the same graph built beforehand."""
    pos, edge_index = octahedron(device)
    x = torch.randn(6, 5, device=device)
    layer = GraphAttention(5, 4, heads=2, edge_dim=3).to(device)
    conv = pyg_twin(layer).to(device)  # add_self_loops=True, fill_value="mean"
    ei, ea = remove_self_loops(edge_index, rel_pos(pos, edge_index))
    ei, ea = add_self_loops(ei, ea, fill_value="mean", num_nodes=6)
    out, alpha = layer(x, ei, edge_attr=ea, return_attention=True)
    alpha = alpha.weight
    ref, (_, ref_alpha) = conv(x, edge_index, rel_pos(pos, edge_index),
                               return_attention_weights=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-5, rtol=1e-5)


def test_bipartite_matches_gatv2conv(device):
    src, dst = torch.randn(7, 3, device=device), torch.randn(4, 5, device=device)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 0], [0, 0, 1, 1, 2, 2, 3, 3]],
                              device=device)
    layer = GraphAttention((3, 5), 6, heads=3).to(device)
    conv = pyg_twin(layer, add_self_loops=False).to(device)
    torch.testing.assert_close(layer((src, dst), edge_index), conv((src, dst), edge_index),
                               atol=1e-5, rtol=1e-5)


def test_attention_is_a_softmax_over_incoming_edges(device):
    pos, edge_index = octahedron(device)
    layer = GraphAttention(3, 4, heads=2).to(device)
    _, alpha = layer(pos, edge_index, return_attention=True)
    alpha = alpha.weight
    total = torch.zeros(6, 2, device=device).index_add_(0, edge_index[1], alpha)
    torch.testing.assert_close(total, torch.ones(6, 2, device=device))
    assert (alpha > 0).all()


def test_permutation_equivariance(device):
    x, pos, _, edge_index = knn_graph([15], 4, 6, device)
    layer = GraphAttention(6, 8, heads=2, edge_dim=3).to(device)
    out, alpha = layer(x, edge_index, edge_attr=rel_pos(pos, edge_index), return_attention=True)
    alpha = alpha.weight
    perm = torch.randperm(15, device=device)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(15, device=device)
    ei_p = inv[edge_index]  # same edges, new node ids, same edge order
    out_p, alpha_p = layer(x[perm], ei_p, edge_attr=rel_pos(pos[perm], ei_p),
                           return_attention=True)
    alpha_p = alpha_p.weight
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha_p, alpha, atol=1e-5, rtol=1e-5)


def test_batch_equals_each_graph_alone(device):
    x, pos, batch, edge_index = knn_graph([13, 3], 5, 6, device)  # 3-node cloud: padded kNN
    layer = GraphAttention(6, 8, heads=2, edge_dim=3).to(device)
    out = layer(x, edge_index, edge_attr=rel_pos(pos, edge_index))
    for s, e in [(0, 13), (13, 16)]:
        ei = neighbors_to_edge_index(knn(pos[s:e], 5))
        alone = layer(x[s:e], ei, edge_attr=rel_pos(pos[s:e], ei))
        torch.testing.assert_close(out[s:e], alone, atol=1e-5, rtol=1e-5)


def test_padding_and_isolated_nodes(device):
    """-1 slots give no edge; a node without incoming edges gets the bias, finite grads."""
    x, pos, batch, _ = knn_graph([10], 3, 4, device)
    idx = knn(pos, 3, batch)
    idx_pad = torch.cat([idx, torch.full((10, 2), -1, device=device)], dim=1)
    idx_pad[4] = -1
    idx[4] = -1
    layer = GraphAttention(4, 4, heads=2).to(device)
    with torch.no_grad():
        layer.bias.normal_()
    xx = x.clone().requires_grad_()
    out = layer(xx, neighbors_to_edge_index(idx_pad))
    torch.testing.assert_close(out, layer(x, neighbors_to_edge_index(idx)))
    torch.testing.assert_close(out[4], layer.bias)
    out.sum().backward()
    assert torch.isfinite(xx.grad).all()


@pytest.mark.parametrize("residual", [False, True])
def test_all_parameters_get_gradients(device, residual):
    x, pos, _, edge_index = knn_graph([10, 7], 4, 6, device)
    layer = GraphAttention(6, 8, heads=2, edge_dim=3, residual=residual).to(device)
    layer(x, edge_index, edge_attr=rel_pos(pos, edge_index)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, pos, _, edge_index = knn_graph([5, 3], 3, 3, device, dtype=torch.float64)
    layer = GraphAttention(3, 4, heads=2, edge_dim=3).to(device).double()
    x.requires_grad_()
    ea = rel_pos(pos, edge_index).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: layer(a, edge_index, edge_attr=b), (x, ea))


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        GraphAttention(4, 6, heads=4)
    layer = GraphAttention(4, 4, heads=2, edge_dim=3)
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="edge_attr is missing"):
        layer(torch.randn(2, 4), ei)


def test_defaults_flags_and_messages():
    """GATv2's defaults (heads 4 here, slope 0.2), bias-free edge and residual maps."""
    gat = GraphAttention(8, 8)
    assert (gat.heads, gat.negative_slope, gat.concat, gat.share_weights) == (4, 0.2, True, False)
    assert gat.lin_edge is None and gat.res is None and gat.bias is not None
    assert gat.lin_src.bias is not None and gat.lin_dst.bias is not None
    assert GraphAttention(8, 8, edge_dim=2).lin_edge.bias is None
    assert GraphAttention(8, 8, residual=True).res.bias is None
    no_bias = GraphAttention(8, 8, bias=False)
    assert no_bias.bias is None and no_bias.lin_src.bias is None and no_bias.lin_dst.bias is None
    with pytest.raises(ValueError, match="share_weights=True needs equal source and target"):
        GraphAttention((4, 6), 8, share_weights=True)
    x = torch.randn(3, 8)
    with pytest.raises(ValueError, match=r"edge_index must be \[2, 2\], got \[3, 2\]"):
        gat(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="edge_attr is given but the layer was built with "
                                         "edge_dim=None"):
        gat(x, torch.tensor([[0, 1], [1, 2]]), edge_attr=torch.randn(2, 1))


def test_no_dropout_in_eval_mode():
    x = torch.randn(4, 8)
    ei = torch.tensor([[0, 1, 2, 3, 1], [1, 2, 3, 0, 3]])
    attr = torch.randn(5, 1)
    gat = GraphAttention(8, 8, heads=2, edge_dim=1, dropout=0.5).eval()
    plain = GraphAttention(8, 8, heads=2, edge_dim=1)
    plain.load_state_dict(gat.state_dict())
    torch.testing.assert_close(gat(x, ei, edge_attr=attr), plain(x, ei, edge_attr=attr))
    knn_ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [0, 0, 1, 1, 2, 2, 3, 3]])  # dense path
    torch.testing.assert_close(gat(x, knn_ei, edge_attr=attr.repeat(2, 1)[:8]),
                               plain(x, knn_ei, edge_attr=attr.repeat(2, 1)[:8]))


def test_a_knn_graph_skips_message_passing(monkeypatch):
    """K edges per target in target order: no scatter (PyG's propagate) at all."""
    x, pos, batch, edge_index = knn_graph([7, 9], 4, 6, "cpu")
    layer = GraphAttention(6, 8, heads=2)
    want = layer(x, edge_index)

    def no_scatter(*args, **kwargs):
        raise AssertionError("message passing used for a kNN graph")

    monkeypatch.setattr(layer, "propagate", no_scatter)
    monkeypatch.setattr(layer, "edge_updater", no_scatter)
    torch.testing.assert_close(layer(x, edge_index), want)
    with pytest.raises(AssertionError, match="message passing"):
        layer(x, edge_index.flip(1))  # targets in reverse order: the general path


def test_bipartite_map_counts_the_sources():
    x_src, x_dst = torch.randn(5, 4), torch.randn(2, 6)
    ei = torch.tensor([[0, 4, 2], [0, 1, 1]])
    _, amap = GraphAttention((4, 6), 8, heads=2)((x_src, x_dst), ei, return_attention=True)
    assert amap.num_sources == 5


def test_knn_layout_is_detected_and_nothing_else():
    from pcattn.nn.graph_attention import _regular_degree

    idx = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]])
    ei = neighbors_to_edge_index(idx)
    assert _regular_degree(ei, 4) == 3
    assert _regular_degree(ei, 3) is None  # 12 edges but not 4 per target of 3
    assert _regular_degree(ei[:, torch.randperm(12, generator=torch.Generator().manual_seed(1))],
                           4) is None
    padded = idx.clone()
    padded[3, 2] = -1  # one target with 2 sources, the others 3
    assert _regular_degree(neighbors_to_edge_index(padded), 4) is None
    assert _regular_degree(neighbors_to_edge_index(idx.masked_fill(idx == 2, -1)), 4) == 2
    assert _regular_degree(torch.zeros(2, 0, dtype=torch.long), 4) is None
    assert _regular_degree(torch.tensor([[0, 1], [1, 1]]), 2) is None  # 1 per target, wrong ones
    assert _regular_degree(ei, 0) is None


@pytest.mark.parametrize("edge_dim,share,concat,chunk,recompute", [
    (None, False, True, "auto", 2**23), (3, True, False, "auto", 2**23),
    (3, False, True, 60, None), (None, False, True, 60, 0), (3, True, False, 1, 0)])
def test_dense_knn_path_equals_the_scatter_path(edge_dim, share, concat, chunk, recompute):
    """Edges in target order take the dense path (in chunks of rows, some recomputed in
    backward); the same edges shuffled take PyG's scatter path: outputs, weights (per edge)
    and every gradient agree in float64."""
    x, pos, batch, edge_index = knn_graph([9, 6], 5, 4, "cpu", dtype=torch.float64, seed=3)
    perm = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    layer = GraphAttention(4, 6, heads=3 if concat else 2, edge_dim=edge_dim,
                           share_weights=share, concat=concat, chunk_size=chunk,
                           recompute_above=recompute).double()
    results = []
    for ei in (edge_index, edge_index[:, perm]):
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        ea = rel_pos(pos, ei) if edge_dim else None
        out, amap = layer(xx, ei, edge_attr=ea, return_attention=True)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append((out, amap.weight, xx.grad,
                        [p.grad.clone() for p in layer.parameters()]))
    (out_a, w_a, gx_a, gp_a), (out_b, w_b, gx_b, gp_b) = results
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(w_a[perm], w_b)
    torch.testing.assert_close(gx_a, gx_b)
    for a, b in zip(gp_a, gp_b):
        torch.testing.assert_close(a, b)


def test_recomputed_chunks_keep_the_dropout_of_the_forward():
    """Chunks recomputed in backward draw the same dropout masks as in forward: the
    gradients equal those of the same seeded step with every chunk kept."""
    x, pos, batch, edge_index = knn_graph([30, 20], 6, 8, "cpu", dtype=torch.float64, seed=5)
    grads = []
    for recompute in (None, 0):
        layer = GraphAttention(8, 8, heads=2, dropout=0.5, chunk_size=96,
                               recompute_above=recompute).double()
        torch.manual_seed(0)
        layer.reset_parameters()
        xx = x.clone().requires_grad_()
        torch.manual_seed(1)
        out = layer(xx, edge_index)
        out.square().sum().backward()
        grads.append((out.detach(), xx.grad, layer.lin_src.weight.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert (grads[0][0] != 0).any()
