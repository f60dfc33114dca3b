"""PointTransformerLayer: PyG equivalence, block contract, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn import ops
from pcattn.nn import PointTransformerBlock, PointTransformerLayer
from helpers import brute_knn, layer_norm, randomize_norms, softmax


def cloud(sizes, c=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    m = sum(sizes)
    pos = torch.rand(m, 3, generator=g, dtype=dtype)
    x = torch.randn(m, c, generator=g, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return x, pos, batch


def test_matches_pyg_point_transformer_conv():
    from torch_geometric.nn import PointTransformerConv

    x, pos, batch = cloud([40, 25], c=6)
    idx = ops.knn(pos, 8, batch)  # includes each point itself
    ours = PointTransformerLayer(6, 16, pos_nn=nn.Linear(3, 16), attn_nn=nn.Identity())
    ref = PointTransformerConv(6, 16, pos_nn=nn.Linear(3, 16), add_self_loops=False)
    with torch.no_grad():
        for name in ("lin", "lin_src", "lin_dst"):
            getattr(ref, name).weight.copy_(getattr(ours, name).weight)
        ref.pos_nn.weight.copy_(ours.pos_nn.weight)
        ref.pos_nn.bias.copy_(ours.pos_nn.bias)
    edge_index = ops.neighbors_to_edge_index(idx)
    torch.testing.assert_close(ours(x, pos, idx), ref(x, pos, edge_index), atol=1e-5, rtol=1e-4)


def test_permutation_equivariance(device):
    x, pos, _ = cloud([50])
    layer = PointTransformerLayer(8, 12).to(device)
    x, pos = x.to(device), pos.to(device)
    perm = torch.randperm(50, device=device)
    out = layer(x, pos, ops.knn(pos, 6))
    out_p = layer(x[perm], pos[perm], ops.knn(pos[perm], 6))
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=1e-4)


def test_two_clouds_equal_each_alone():
    x, pos, batch = cloud([30, 12])
    layer = PointTransformerLayer(8, 8)
    both = layer(x, pos, ops.knn(pos, 16, batch))
    a = layer(x[:30], pos[:30], ops.knn(pos[:30], 16))
    b = layer(x[30:], pos[30:], ops.knn(pos[30:], 16))  # 12 points < K: padded
    torch.testing.assert_close(both, torch.cat([a, b]), atol=1e-5, rtol=1e-4)


def test_padding_gets_zero_weight_and_no_gradient():
    x, pos, _ = cloud([10])
    idx = ops.knn(pos, 4)
    idx_pad = torch.cat([idx, torch.full((10, 3), -1)], dim=1)  # [M, 7] with 3 padded
    layer = PointTransformerLayer(8, 8)
    out, w = layer(x, pos, idx_pad, return_attention=True)
    w = w.weight
    assert w.shape == (10, 7, 8)
    assert (w[:, 4:] == 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(10, 8))
    torch.testing.assert_close(out, layer(x, pos, idx), atol=1e-6, rtol=1e-5)
    # padded slots route no gradient anywhere: same gradients as without them
    x2 = x.detach().clone().requires_grad_(True)
    layer(x2, pos, idx_pad).sum().backward()
    x3 = x.detach().clone().requires_grad_(True)
    layer(x3, pos, idx).sum().backward()
    torch.testing.assert_close(x2.grad, x3.grad, atol=1e-6, rtol=1e-5)


def test_attention_rows_sum_to_one_over_valid():
    x, pos, batch = cloud([20, 3])
    idx = ops.knn(pos, 5, batch)
    _, w = PointTransformerLayer(8, 4)(x, pos, idx, return_attention=True)
    w = w.weight
    valid = (idx >= 0)[..., None]
    torch.testing.assert_close(w.sum(1), torch.ones(23, 4))
    assert (w[~valid.expand_as(w)] == 0).all()


def test_every_parameter_gets_a_gradient():
    x, pos, batch = cloud([20, 9])
    block = PointTransformerBlock(8)
    block(x, pos, ops.knn(pos, 6, batch)).pow(2).sum().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_gradcheck_float64():
    x, pos, _ = cloud([6], c=3, dtype=torch.float64)
    x.requires_grad_(True)
    pos.requires_grad_(True)
    idx = torch.cat([ops.knn(pos.detach(), 3), torch.full((6, 1), -1)], dim=1)
    layer = PointTransformerLayer(3, 4).double()
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b, idx), (x, pos))


def test_bad_idx_shape_is_a_clear_error():
    x, pos, _ = cloud([5])
    with pytest.raises(ValueError, match="idx must be"):
        PointTransformerLayer(8, 8)(x, pos, torch.zeros(4, 2, dtype=torch.long))



def test_block_value_and_residual(device):
    """Zhao et al., Fig. 4, pre-norm: y = x + W_out ReLU(LN2(PT(W_in LN1(x) + b_in))) + b_out."""
    x, pos, batch = (t.to(device) for t in cloud([12, 5]))
    idx = ops.knn(pos, 6, batch)  # padded rows in the 5-point cloud
    block = PointTransformerBlock(8).to(device)
    randomize_norms(block)
    h_in = layer_norm(x, block.norm1) @ block.lin_in.weight.T + block.lin_in.bias
    h, layer_map = block.attn(h_in, pos, idx, return_attention=True)  # tested against PyG
    ref = x + torch.relu(layer_norm(h, block.norm2)) @ block.lin_out.weight.T + block.lin_out.bias
    out, amap = block(x, pos, idx, return_attention=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(block(x, pos, idx), out)
    torch.testing.assert_close(amap.weight, layer_map.weight)
    with torch.no_grad():  # a zero output projection leaves exactly the residual path
        block.lin_out.weight.zero_()
        block.lin_out.bias.zero_()
    assert torch.equal(block(x, pos, idx), x)


def test_layer_formula_by_hand_default_subnetworks(device):
    """y_i = sum_j softmax_j(gamma(phi(x_i) - psi(x_j) + delta_ij)) * (alpha(x_j) + delta_ij),
    delta_ij = theta(p_i - p_j), over the valid neighbours, with the default (non-linear)
    gamma, so that the query term does not cancel in the softmax."""
    x, pos, batch = (t.to(device) for t in cloud([9, 3], c=5))
    nbr = brute_knn(pos, 4, batch, pos, batch)  # the 3-point cloud: one padded slot
    layer = PointTransformerLayer(5, 6).to(device)
    randomize_norms(layer)
    out, amap = layer(x, pos, nbr, return_attention=True)
    phi, psi, alpha = (x @ w.T for w in (layer.lin_dst.weight, layer.lin_src.weight,
                                         layer.lin.weight))
    for i in range(12):
        j = nbr[i][nbr[i] >= 0]
        delta = layer.pos_nn(pos[i] - pos[j])  # [K_i, C]
        a = softmax(layer.attn_nn(phi[i] - psi[j] + delta), dim=0)  # per channel
        torch.testing.assert_close(out[i], (a * (alpha[j] + delta)).sum(0))
        torch.testing.assert_close(amap.weight[i, :j.numel()], a)
    assert (amap.weight[9:, 3] == 0).all()


def test_architecture_follows_the_paper():
    """phi, psi, alpha are linear maps without bias (as PyG's PointTransformerConv); the
    block passes its keywords to the layer and keeps the width."""
    layer = PointTransformerLayer(5, 6)
    assert all(m.bias is None for m in (layer.lin, layer.lin_src, layer.lin_dst))
    block = PointTransformerBlock(8, attn_nn=nn.Identity())
    assert isinstance(block.attn.attn_nn, nn.Identity)
    assert block.in_channels == block.out_channels == 8


@pytest.mark.parametrize("channels", [8, 64])  # 8: folded maps (65 x 8 edges >= 8 * 8); 64: not
def test_bfloat16_autocast_follows_float32(channels):
    """Under CPU autocast the folded path's in-place products take the gathered rows' dtype,
    as autocast's own ``addmm`` would, and the result follows float32's."""
    x, pos, batch = cloud([40, 25], c=6)
    idx = ops.knn(pos, 8, batch)
    layer = PointTransformerLayer(6, channels)
    ref = layer(x, pos, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, pos, idx)
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)
    assert all(p.grad is not None and bool(p.grad.isfinite().all())
               for p in layer.parameters())
