from __future__ import annotations

import pytest
import torch

from pcattn.nn.anchor_attention import AnchorAttention
from pcattn.nn.global_attention import GlobalSelfAttention
from helpers import clouds, linear, softmax


def reference(block, x, pos, batch):
    """Per cloud: anchors by FPS written out, cells by nearest anchor from all distances,
    mean keys / values per cell, softmax over cells with + log n_s."""
    h, c = block.heads, block.out_channels
    d, outs = c // h, []
    for b in range(int(batch.max()) + 1):
        xb, pb = x[batch == b], pos[batch == b]
        n = xb.shape[0]
        chosen = [int(((pb - pb.mean(0)) ** 2).sum(-1).argmax())]
        dist = ((pb - pb[chosen[0]]) ** 2).sum(-1)
        while len(chosen) < min(block.num_anchors, n):
            chosen.append(int(dist.argmax()))
            dist = torch.minimum(dist, ((pb - pb[chosen[-1]]) ** 2).sum(-1))
        cell = torch.cdist(pb, pb[chosen]).argmin(1)  # [N]
        q, k, v = linear(xb, block.lin_qkv).chunk(3, -1)
        heads = []
        for hh in range(h):
            s = slice(hh * d, (hh + 1) * d)
            kbar = torch.stack([k[cell == a, s].mean(0) for a in range(len(chosen))])
            vbar = torch.stack([v[cell == a, s].mean(0) for a in range(len(chosen))])
            size = torch.bincount(cell, minlength=len(chosen)).to(x.dtype)
            heads.append(softmax(q[:, s] @ kbar.T / d ** 0.5 + size.log()) @ vbar)
        outs.append(linear(torch.cat(heads, -1), block.lin_out))
    return torch.cat(outs)


def test_matches_pooled_formula_float64(device):
    x, pos, batch = clouds([30, 9, 17], 6, device, torch.float64)
    block = AnchorAttention(6, 8, heads=2, num_anchors=5).to(device, torch.float64)
    out, amap = block(x, batch, pos=pos, return_attention=True)
    expect = reference(block, x, pos, batch)
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(block(x, batch, pos=pos), expect)  # the fused path


def test_weights_per_node_reproduce_the_output(device):
    x, pos, batch = clouds([12, 7], 8, device)
    block = AnchorAttention(8, heads=2, num_anchors=4, bias=False).to(device)
    out, amap = block(x, batch, pos=pos, return_attention=True)
    w = amap.weight  # [B, H, N, N]
    assert amap.kind == "global" and w.shape == (2, 2, 12, 12)
    torch.testing.assert_close(w.sum(-1)[1, :, :7], torch.ones(2, 7, device=device))
    assert (w[1, :, 7:] == 0).all() and (w[1, :, :, 7:] == 0).all()
    v = block.lin_qkv(x)[:, 16:].view(19, 2, 4)
    for b, (s, e) in enumerate([(0, 12), (12, 19)]):
        n = e - s
        y = torch.einsum("hij,jhd->ihd", w[b, :, :n, :n], v[s:e]).reshape(n, 8)
        torch.testing.assert_close(block.lin_out(y), out[s:e])


def test_as_many_anchors_as_nodes_is_global_attention(device):
    x, pos, batch = clouds([9, 5], 8, device, torch.float64)
    full = GlobalSelfAttention(8, heads=2).to(device, torch.float64)
    block = AnchorAttention(8, heads=2, num_anchors=9).to(device, torch.float64)
    block.load_state_dict(full.state_dict())
    torch.testing.assert_close(block(x, batch, pos=pos), full(x, batch))
    _, a = block(x, batch, pos=pos, return_attention=True)
    torch.testing.assert_close(a.weight, full(x, batch, return_attention=True)[1].weight)


def test_permutation_equivariance_and_batched_equals_alone(device):
    x, pos, batch = clouds([20, 11], 8, device)
    block = AnchorAttention(8, heads=2, num_anchors=6).to(device)
    perm = torch.cat([torch.randperm(20), 20 + torch.randperm(11)]).to(device)
    out = block(x, batch, pos=pos)
    torch.testing.assert_close(block(x[perm], batch, pos=pos[perm]), out[perm])
    torch.testing.assert_close(out[20:], block(x[20:], pos=pos[20:]))


def test_gradients_stay_in_their_cloud_and_reach_every_parameter(device):
    x, pos, batch = clouds([10, 6], 8, device)
    x.requires_grad_(True)
    block = AnchorAttention(8, heads=2, num_anchors=3).to(device)
    block(x, batch, pos=pos)[10:].square().sum().backward()
    assert (x.grad[:10] == 0).all() and (x.grad[10:].abs().sum(-1) > 0).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, pos, batch = clouds([6, 4], 4, device, torch.float64)
    x.requires_grad_(True)
    block = AnchorAttention(4, heads=2, num_anchors=3).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: block(t, batch, pos=pos), (x,))


def test_missing_pos_says_how_to_call():
    block = AnchorAttention(8, heads=2)
    with pytest.raises(ValueError, match=r"needs pos=\[M, 3\].*block\(x, batch, pos=pos\)"):
        block(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"pos must be \[5, 3\]"):
        block(torch.randn(5, 8), pos=torch.randn(4, 3))
    with pytest.raises(ValueError, match="num_anchors must be an integer >= 1"):
        AnchorAttention(8, num_anchors=0)
