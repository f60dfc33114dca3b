from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from pcattn.nn.linear_attention import LinearAttention
from pcattn.nn.positional_encoding import LearnedPositionalEncoding


def clouds(sizes, c, device, dtype=torch.float32):
    x = torch.randn(sum(sizes), c, device=device, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, device=device))
    return x, batch


def explicit(attn: LinearAttention, x, batch):
    """The O(N^2) formula, one cloud at a time: sum_j phi(q_i).phi(k_j) v_j / (... + eps)."""
    h, c = attn.heads, attn.out_channels
    outs = []
    for b in range(int(batch.max()) + 1):
        q, k, v = attn.lin_qkv(x[batch == b]).view(-1, 3, h, c // h).unbind(1)
        phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1  # [N, H, D]
        sim = torch.einsum("ihd,jhd->hij", phi_q, phi_k)  # [H, N, N]
        w = sim / (sim.sum(-1, keepdim=True) + attn.eps)
        outs.append(torch.einsum("hij,jhd->ihd", w, v).reshape(-1, c))
    return attn.lin_out(torch.cat(outs))


def test_matches_explicit_quadratic_formula(device):
    x, batch = clouds([7, 3, 5], 12, device)
    attn = LinearAttention(12, heads=3).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    assert out.shape == (15, 12) and w.shape == (3, 3, 7, 7)
    torch.testing.assert_close(out, explicit(attn, x, batch))
    torch.testing.assert_close(attn(x, batch), out)


def test_returned_weights_reproduce_output(device):
    x, batch = clouds([6, 4], 8, device)
    attn = LinearAttention(8, heads=2, bias=False).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    assert (w[1, :, 4:] == 0).all() and (w[1, :, :, 4:] == 0).all()  # padding
    assert (w[1, :, :4, :4] > 0).all()
    v = attn.lin_qkv(x)[:, 16:].view(10, 2, 4)  # [M, H, D]
    for b, (s, e) in enumerate([(0, 6), (6, 10)]):
        n = e - s
        y = torch.einsum("hij,jhd->ihd", w[b, :, :n, :n], v[s:e]).reshape(n, 8)
        torch.testing.assert_close(attn.lin_out(y), out[s:e])


def test_permutation_equivariance(device):
    x, batch = clouds([7, 4], 8, device)
    attn = LinearAttention(8, heads=2).to(device)
    perm = torch.cat([torch.randperm(7), 7 + torch.randperm(4)]).to(device)
    torch.testing.assert_close(attn(x[perm], batch), attn(x, batch)[perm])


def test_batched_equals_alone(device):
    x, batch = clouds([6, 3], 8, device)
    attn = LinearAttention(8, heads=2).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    out1, w1 = attn(x[6:], None, return_attention=True)
    w1 = w1.weight
    torch.testing.assert_close(out, torch.cat([attn(x[:6]), out1]))
    torch.testing.assert_close(w[1, :, :3, :3], w1[0])


def test_no_gradient_across_clouds(device):
    x, batch = clouds([6, 3], 8, device)
    x.requires_grad_(True)
    attn = LinearAttention(8, heads=2).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    (out[6:].sum() + w[1].sum()).backward()
    assert (x.grad[:6] == 0).all()
    assert (x.grad[6:].abs().sum(-1) > 0).all()


def test_all_parameters_get_gradients(device):
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    attn = LinearAttention(8, heads=2, pos_encoding=LearnedPositionalEncoding(8)).to(device)
    attn(x, batch, pos=pos).square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = clouds([3, 2], 4, device, torch.float64)
    x.requires_grad_(True)
    attn = LinearAttention(4, heads=2).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: attn(t, batch), (x,))
    assert torch.autograd.gradcheck(lambda t: attn(t, batch, return_attention=True)[1].weight, (x,))


def test_custom_feature_map(device):
    x, _ = clouds([5], 4, device)
    attn = LinearAttention(4, heads=1, feature_map=lambda t: F.softplus(t)).to(device)
    q, k, v = attn.lin_qkv(x).chunk(3, dim=-1)
    sim = F.softplus(q) @ F.softplus(k).T  # [N, N]
    w = sim / (sim.sum(-1, keepdim=True) + attn.eps)
    torch.testing.assert_close(attn(x), attn.lin_out(w @ v))


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs Linux /proc/self/clear_refs")
def test_memory_is_linear_in_nodes():
    x = torch.randn(32768, 32)
    attn = LinearAttention(32, heads=1).eval()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    with open("/proc/self/status") as f:
        before = next(int(s.split()[1]) for s in f if s.startswith("VmHWM"))
    with torch.no_grad():
        attn(x)
    with open("/proc/self/status") as f:
        grow = (next(int(s.split()[1]) for s in f if s.startswith("VmHWM")) - before) / 1024
    assert grow < 200, f"peak RSS grew by {grow:.0f} MB (one [N, N] would be 4 GB)"


def test_defaults_bias_and_pos_encoding(device):
    attn = LinearAttention(8)
    assert attn.heads == 4 and attn.lin_qkv.bias is not None and attn.lin_out.bias is not None
    no_bias = LinearAttention(8, bias=False)
    assert no_bias.lin_qkv.bias is None and no_bias.lin_out.bias is None
    x = torch.randn(7, 8, device=device)
    batch = torch.tensor([0] * 4 + [1] * 3, device=device)
    pos = torch.randn(7, 3, device=device)
    pe = torch.nn.Linear(3, 8).to(device)
    with_pe = LinearAttention(8, heads=2, pos_encoding=pe).to(device)
    plain = LinearAttention(8, heads=2).to(device)
    plain.load_state_dict(with_pe.state_dict(), strict=False)
    torch.testing.assert_close(with_pe(x, batch, pos=pos), plain(x + pe(pos), batch))
