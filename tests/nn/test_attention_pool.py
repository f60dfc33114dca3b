"""AttentionPool: equal to torch's MultiheadAttention with one query per cloud."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn import AttentionPool
from helpers import features


SIZES = [7, 1, 12]
SPANS = [(0, 7), (7, 8), (8, 20)]


def test_matches_torch_multihead_attention(device):
    c_in, c, h = 5, 8, 2
    x, batch = features(SIZES, c_in, device)
    pool = AttentionPool(c_in, c, heads=h).to(device)
    mha = nn.MultiheadAttention(c, h, kdim=c_in, vdim=c_in, batch_first=True).to(device)
    seed = torch.randn(c, device=device)
    with torch.no_grad():
        q = mha.q_proj_weight @ seed + mha.in_proj_bias[:c]  # the projected learned query
        pool.query.copy_(q.view(h, c // h))
        pool.lin_k.weight.copy_(mha.k_proj_weight)
        pool.lin_k.bias.copy_(mha.in_proj_bias[c: 2 * c])
        pool.lin_v.weight.copy_(mha.v_proj_weight)
        pool.lin_v.bias.copy_(mha.in_proj_bias[2 * c:])
        pool.lin_out.weight.copy_(mha.out_proj.weight)
        pool.lin_out.bias.copy_(mha.out_proj.bias)
    out, w = pool(x, batch, return_attention=True)
    w = w.weight
    assert out.shape == (3, c) and w.shape == (20, h)
    for b, (s, e) in enumerate(SPANS):
        ref, ref_w = mha(seed.view(1, 1, c), x[None, s:e], x[None, s:e],
                         average_attn_weights=False)  # [1, 1, C], [1, H, 1, N]
        torch.testing.assert_close(out[b], ref[0, 0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(w[s:e], ref_w[0, :, 0].T, atol=1e-5, rtol=1e-5)


def test_weights_sum_to_one_per_cloud(device):
    x, batch = features(SIZES, 6, device)
    _, w = AttentionPool(6, heads=3).to(device)(x, batch, return_attention=True)
    w = w.weight
    total = torch.zeros(3, 3, device=device).index_add_(0, batch, w)
    torch.testing.assert_close(total, torch.ones(3, 3, device=device))
    assert (w[7] == 1).all(), "a one-node cloud puts all its weight on that node"


def test_permutation_invariance_and_batch_equals_alone(device):
    x, batch = features(SIZES, 6, device)
    pool = AttentionPool(6, 8, heads=2).to(device)
    out, w = pool(x, batch, return_attention=True)
    w = w.weight
    perm = torch.cat([torch.randperm(7), torch.tensor([7]), 8 + torch.randperm(12)]).to(device)
    out_p, w_p = pool(x[perm], batch, return_attention=True)
    w_p = w_p.weight
    torch.testing.assert_close(out_p, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_p, w[perm], atol=1e-5, rtol=1e-5)
    for b, (s, e) in enumerate(SPANS):
        torch.testing.assert_close(pool(x[s:e]), out[b: b + 1], atol=1e-5, rtol=1e-5)


def test_all_parameters_get_gradients(device):
    x, batch = features(SIZES, 6, device)
    pool = AttentionPool(6, 8, heads=2).to(device)
    pool(x, batch).square().sum().backward()
    for name, p in pool.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = features([4, 3], 4, device, dtype=torch.float64)
    pool = AttentionPool(4, heads=2).to(device).double()
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: pool(a, batch), (x,))


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        AttentionPool(6, heads=4)


def test_defaults():
    assert AttentionPool(8).heads == 4 and AttentionPool(8).out_channels == 8


def test_bias_false_drops_key_and_value_biases(device):
    """Without biases, a one-point cloud pools to lin_out(W_v x): linear in x up to lin_out's
    bias (the key bias alone would not show: it shifts a cloud's logits by a constant)."""
    pool = AttentionPool(4, 8, heads=2, bias=False).to(device)
    assert {k for k in pool.state_dict() if "bias" in k} == {"lin_out.bias"}
    x = torch.randn(3, 4, device=device)
    batch = torch.arange(3, device=device)
    b_out = pool.lin_out.bias
    torch.testing.assert_close(pool(2 * x, batch) - b_out, 2 * (pool(x, batch) - b_out))
    expected = x @ pool.lin_v.weight.T @ pool.lin_out.weight.T + b_out
    torch.testing.assert_close(pool(x, batch), expected)
