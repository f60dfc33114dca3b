"""GroupedVectorAttention: a per-node loop reference, and the local-block contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn import GroupedVectorAttention
from pcattn.ops import knn
from helpers import brute_knn, clouds, randomize_norms, renumber


def make(c_in=5, c=8, heads=4, **kw):
    return GroupedVectorAttention(c_in, c, heads=heads, **kw)


def test_shapes_and_weights(device):
    x, pos, batch = clouds([20, 3], 5, device)
    idx = knn(pos, 6, batch)  # the 3-point cloud has 3 padded slots per row
    layer = make().to(device)
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    assert out.shape == (23, 8) and w.shape == (23, 6, 4)
    torch.testing.assert_close(w.sum(1), torch.ones(23, 4, device=device))
    assert (w[idx < 0] == 0).all() and (idx[20:, 3:] == -1).all()
    torch.testing.assert_close(layer(x, pos, idx), out)


@pytest.mark.parametrize("pos_multiplier", [False, True])
def test_matches_ptv2_reference_forward(pos_multiplier):
    """Transcribed from Pointcept's ``GroupedVectorAttention.forward`` (PTv2), with its
    grouping done by a brute-force kNN (``pos`` = p_j - p_i) and the softmax restricted to
    the valid neighbours (PTv2 multiplies by the mask afterwards instead)."""
    x, pos, batch = clouds([9, 4], 5, "cpu", dtype=torch.float64)
    nbr = brute_knn(pos, 6, batch, pos, batch)  # the 4-point cloud: 2 padded slots
    layer = make(pos_multiplier=pos_multiplier).double()
    randomize_norms(layer)
    out, amap = layer(x, pos, nbr, return_attention=True)
    valid = nbr >= 0  # [n, s]
    j = nbr.clamp(min=0)
    query, key, value = layer.lin_q(x), layer.lin_k(x), layer.lin_v(x)
    rel_pos = (pos[j] - pos[:, None, :]) * valid[..., None]  # [n, s, 3]
    key, value = key[j], value[j]  # [n, s, c]
    relation_qk = key - query.unsqueeze(1)
    if pos_multiplier:
        relation_qk = relation_qk * layer.pos_mul_nn(rel_pos)
    peb = layer.pos_nn(rel_pos)
    relation_qk = relation_qk + peb
    value = value + peb
    weight = layer.attn_nn(relation_qk)  # [n, s, g]
    weight = torch.exp(weight - weight.max(1, keepdim=True).values) * valid[..., None]
    weight = weight / weight.sum(1, keepdim=True)
    value = value.view(13, 6, 4, 2)  # n ns (g i) -> n ns g i
    feat = torch.einsum("nsgi,nsg->ngi", value, weight).reshape(13, 8)
    torch.testing.assert_close(amap.weight, weight)
    torch.testing.assert_close(out, feat)


def test_permutation_equivariance(device):
    x, pos, batch = clouds([16], 5, device)
    idx = knn(pos, 5, batch)
    layer = make().to(device)
    perm = torch.randperm(16, device=device)
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    out_p, w_p = layer(x[perm], pos[perm], renumber(idx, perm), return_attention=True)
    w_p = w_p.weight
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_p, w[perm], atol=1e-5, rtol=1e-5)


def test_batch_equals_each_cloud_alone(device):
    sizes, k = [14, 4], 6  # the second cloud is smaller than k: padded rows
    x, pos, batch = clouds(sizes, 5, device)
    layer = make().to(device)
    out = layer(x, pos, knn(pos, k, batch))
    for s, e in [(0, 14), (14, 18)]:
        alone = layer(x[s:e], pos[s:e], knn(pos[s:e], k))
        torch.testing.assert_close(out[s:e], alone, atol=1e-5, rtol=1e-5)


def test_padding_gets_no_weight_and_no_gradient(device):
    """Extra -1 columns change nothing: output, weights and every gradient are the same."""
    x, pos, batch = clouds([12], 5, device)
    idx = knn(pos, 4, batch)
    pad = torch.full((12, 3), -1, device=device)
    idx_pad = torch.cat([pad[:, :1], idx[:, :2], pad[:, 1:], idx[:, 2:]], dim=1)  # [12, 7]
    layer = make().to(device)
    grads = []
    for nb in (idx, idx_pad):
        xx, pp = x.clone().requires_grad_(), pos.clone().requires_grad_()
        layer.zero_grad()
        out, w = layer(xx, pp, nb, return_attention=True)
        w = w.weight
        (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        grads.append((out, w[nb >= 0], xx.grad, pp.grad,
                      [p.grad.clone() for p in layer.parameters()]))
    (o1, w1, gx1, gp1, gw1), (o2, w2, gx2, gp2, gw2) = grads
    torch.testing.assert_close(o2, o1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w2, w1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx2, gx1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gp2, gp1, atol=1e-5, rtol=1e-5)
    for a, b in zip(gw1, gw2):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_all_padding_row_is_zero_and_finite(device):
    x, pos, batch = clouds([6], 5, device)
    idx = knn(pos, 3, batch)
    idx[2] = -1
    xx = x.clone().requires_grad_()
    layer = make().to(device)
    out, w = layer(xx, pos, idx, return_attention=True)
    w = w.weight
    out.sum().backward()
    assert (out[2] == 0).all() and (w[2] == 0).all()
    assert torch.isfinite(xx.grad).all()


@pytest.mark.parametrize("pos_multiplier", [False, True])
def test_all_parameters_get_gradients(device, pos_multiplier):
    x, pos, batch = clouds([10, 7], 5, device)
    layer = make(pos_multiplier=pos_multiplier).to(device)
    layer(x, pos, knn(pos, 4, batch)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, pos, batch = clouds([5, 3], 3, device, dtype=torch.float64)
    idx = knn(pos, 4, batch)
    layer = make(c_in=3, c=4, heads=2, pos_multiplier=True).to(device).double()
    x.requires_grad_()
    pos.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b, idx), (x, pos))


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        GroupedVectorAttention(4, 10, heads=4)
    layer = make()
    with pytest.raises(ValueError, match="idx must be"):
        layer(torch.randn(5, 5), torch.rand(5, 3), torch.zeros(4, 2, dtype=torch.long))


def test_architecture_defaults_and_injection():
    """PTv2: q, k are Linear, norm, ReLU; v is linear; bias on by default; pe_multiplier off
    by default; injected sub-networks are used."""
    layer = make()
    for m in (layer.lin_q, layer.lin_k):
        assert [type(t) for t in m] == [nn.Linear, nn.LayerNorm, nn.ReLU]
    assert all(m.bias is not None for m in (layer.lin_q[0], layer.lin_k[0], layer.lin_v))
    assert layer.pos_mul_nn is None
    no_bias = make(bias=False)
    assert all(m.bias is None for m in (no_bias.lin_q[0], no_bias.lin_k[0], no_bias.lin_v))
    pos_nn, attn_nn = nn.Linear(3, 8), nn.Linear(8, 4)
    custom = make(pos_nn=pos_nn, attn_nn=attn_nn)
    assert custom.pos_nn is pos_nn and custom.attn_nn is attn_nn
