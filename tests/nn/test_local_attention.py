"""LocalSelfAttention: equivalence with torch's MultiheadAttention, and the block contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn import LocalSelfAttention
from pcattn.ops import gather, knn
from helpers import clouds, renumber


class ZeroPos(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, rel):
        return rel.new_zeros(rel.shape[:-1] + (self.c,))


def test_shapes_and_weights(device):
    x, pos, batch = clouds([20, 3], 6, device)
    idx = knn(pos, 6, batch)
    layer = LocalSelfAttention(6, 8, heads=2).to(device)
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    assert out.shape == (23, 8) and w.shape == (23, 6, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(23, 2, device=device))
    assert (w[idx < 0] == 0).all() and (idx < 0).any()


def test_matches_torch_multihead_attention_without_position(device):
    """theta = 0: each centre is a query over its neighbours, padding as key_padding_mask."""
    c, h = 8, 2
    x, pos, batch = clouds([15, 4], c, device)
    idx = knn(pos, 6, batch)
    layer = LocalSelfAttention(c, c, heads=h, pos_nn=ZeroPos(c)).to(device)
    mha = nn.MultiheadAttention(c, h, batch_first=True).to(device)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([layer.lin_q.weight, layer.lin_k.weight,
                                            layer.lin_v.weight]))
        mha.in_proj_bias.copy_(torch.cat([layer.lin_q.bias, layer.lin_k.bias,
                                          layer.lin_v.bias]))
        mha.out_proj.weight.copy_(layer.lin_out.weight)
        mha.out_proj.bias.copy_(layer.lin_out.bias)
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    nbr = gather(x, idx)  # [M, K, C]
    ref, ref_w = mha(x[:, None], nbr, nbr, key_padding_mask=idx < 0,
                     average_attn_weights=False)  # [M, 1, C], [M, H, 1, K]
    torch.testing.assert_close(out, ref[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w[:, :, 0].transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_relative_position_translation_invariant_not_rotation_invariant(device):
    x, pos, batch = clouds([16], 4, device)
    idx = knn(pos, 5, batch)
    layer = LocalSelfAttention(4, 8, heads=2).to(device)
    out = layer(x, pos, idx)
    torch.testing.assert_close(layer(x, pos + 3.0, idx), out, atol=1e-5, rtol=1e-5)
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], device=device)
    assert not torch.allclose(layer(x, pos @ rot.T, idx), out, atol=1e-4)


def test_permutation_equivariance(device):
    x, pos, batch = clouds([16], 4, device)
    idx = knn(pos, 5, batch)
    layer = LocalSelfAttention(4, 8, heads=2).to(device)
    perm = torch.randperm(16, device=device)
    out, w = layer(x, pos, idx, return_attention=True)
    w = w.weight
    out_p, w_p = layer(x[perm], pos[perm], renumber(idx, perm), return_attention=True)
    w_p = w_p.weight
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_p, w[perm], atol=1e-5, rtol=1e-5)


def test_batch_equals_each_cloud_alone(device):
    x, pos, batch = clouds([14, 4], 4, device)
    layer = LocalSelfAttention(4, 8, heads=4).to(device)
    out = layer(x, pos, knn(pos, 6, batch))
    for s, e in [(0, 14), (14, 18)]:
        alone = layer(x[s:e], pos[s:e], knn(pos[s:e], 6))
        torch.testing.assert_close(out[s:e], alone, atol=1e-5, rtol=1e-5)


def test_padding_gets_no_weight_and_no_gradient(device):
    x, pos, batch = clouds([12], 4, device)
    idx = knn(pos, 4, batch)
    pad = torch.full((12, 2), -1, device=device)
    idx_pad = torch.cat([idx[:, :1], pad[:, :1], idx[:, 1:], pad[:, 1:]], dim=1)  # [12, 6]
    layer = LocalSelfAttention(4, 8, heads=2).to(device)
    res = []
    for nb in (idx, idx_pad):
        xx, pp = x.clone().requires_grad_(), pos.clone().requires_grad_()
        layer.zero_grad()
        out, w = layer(xx, pp, nb, return_attention=True)
        w = w.weight
        (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        res.append([out, w[nb >= 0], xx.grad, pp.grad] + [p.grad.clone()
                                                          for p in layer.parameters()])
    for a, b in zip(*res):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    idx_pad[3] = -1  # a row with no neighbour: zero weights, finite everything
    xx = x.clone().requires_grad_()
    out, w = layer(xx, pos, idx_pad, return_attention=True)
    w = w.weight
    out.sum().backward()
    assert (w[3] == 0).all() and torch.isfinite(out).all() and torch.isfinite(xx.grad).all()


def test_all_parameters_get_gradients(device):
    x, pos, batch = clouds([10, 7], 4, device)
    layer = LocalSelfAttention(4, 8, heads=2).to(device)
    layer(x, pos, knn(pos, 4, batch)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, pos, batch = clouds([5, 3], 3, device, dtype=torch.float64)
    idx = knn(pos, 4, batch)
    layer = LocalSelfAttention(3, 4, heads=2).to(device).double()
    x.requires_grad_()
    pos.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b, idx), (x, pos))


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        LocalSelfAttention(4, 10, heads=4)


def test_multi_head_formula_by_hand_without_bias():
    """a_ij^h = softmax_j(q_i^h . (k_j + delta_ij)^h / sqrt(D)), y_i = W_o ||_h sum_j
    a_ij^h (v_j + delta_ij)^h + b_o, node by node and head by head; ``bias=False`` leaves
    W_q, W_k, W_v without a bias (W_o keeps one)."""
    c, h, d = 6, 3, 2
    pos_nn = nn.Linear(3, c).double()
    layer = LocalSelfAttention(4, c, heads=h, pos_nn=pos_nn, bias=False).double()
    assert [lin.bias for lin in (layer.lin_q, layer.lin_k, layer.lin_v)] == [None] * 3
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    pos = torch.randn(5, 3, generator=g, dtype=torch.float64)
    idx = torch.tensor([[0, 2, -1], [1, 0, 4], [2, -1, -1], [3, 4, 0], [4, 1, 3]])
    wq, wk, wv = layer.lin_q.weight, layer.lin_k.weight, layer.lin_v.weight
    out, amap = layer(x, pos, idx, return_attention=True)
    for i in range(5):
        nbrs = [int(j) for j in idx[i] if j >= 0]
        heads = []
        for hh in range(h):
            s = slice(hh * d, (hh + 1) * d)
            q = (wq @ x[i])[s]
            keys = [(wk @ x[j] + pos_nn(pos[i] - pos[j]))[s] for j in nbrs]
            vals = [(wv @ x[j] + pos_nn(pos[i] - pos[j]))[s] for j in nbrs]
            a = torch.softmax(torch.stack([q @ kj for kj in keys]) / d ** 0.5, dim=0)
            heads.append(sum(a[n] * vals[n] for n in range(len(nbrs))))
            torch.testing.assert_close(amap.weight[i, :len(nbrs), hh], a)
        expect = layer.lin_out.weight @ torch.cat(heads) + layer.lin_out.bias
        torch.testing.assert_close(out[i], expect)
    assert (amap.weight[idx < 0] == 0).all()
