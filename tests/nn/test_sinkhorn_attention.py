from __future__ import annotations

import pytest
import torch

from pcattn.nn.global_attention import GlobalSelfAttention
from pcattn.nn.sinkhorn_attention import SinkhornAttention, log_sinkhorn
from helpers import clouds, linear, softmax


def plain_sinkhorn(logits, iters):
    """Sinkhorn's iterations as written: exp, then alternately rows and columns to sum 1."""
    s = logits.exp()
    for _ in range(iters):
        s = s / s.sum(1, keepdim=True)
        s = s / s.sum(0, keepdim=True)
    return s


def test_log_space_equals_plain_iterations_float64_and_masks_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 5, generator=g, dtype=torch.float64) * 3
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    s = log_sinkhorn(logits, mask, 6).exp()
    torch.testing.assert_close(s[0], plain_sinkhorn(logits[0], 6))
    torch.testing.assert_close(s[1, :3, :3], plain_sinkhorn(logits[1, :3, :3], 6))
    assert (s[1, :3, 3:] == 0).all() and (s[1, 3:, :3] == 0).all()
    many = log_sinkhorn(logits, mask, 2000).exp()[0]
    torch.testing.assert_close(many.sum(0), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(many.sum(1), torch.ones(5, dtype=torch.float64))


def test_low_temperature_stays_finite_where_plain_iterations_overflow():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 6, 6, generator=g) * 20 / 0.1  # tau = 0.1
    logits.requires_grad_(True)
    assert not torch.isfinite(plain_sinkhorn(logits[0].detach(), 8)).all()
    s = log_sinkhorn(logits, torch.ones(1, 6, dtype=torch.bool), 8).exp()
    assert torch.isfinite(s).all()
    s.square().sum().backward()
    assert torch.isfinite(logits.grad).all()


def reference(block, x, pos, batch):
    """Per cloud from the block's blocks: S by plain Sinkhorn of the bilinear scores of
    the blocks' mean features, then per block a softmax over its own keys and the sorted
    slots (mixtures of slot p of every block by S, bias log of their real mass)."""
    blocks, _ = block.sort_matrix(x, batch, pos=pos)
    h, c = block.heads, block.out_channels
    d = c // h
    q, k, v = linear(x, block.lin_qkv).chunk(3, -1)
    out = torch.zeros(x.shape[0], c, dtype=x.dtype)
    for cloud in range(blocks.shape[0]):
        rows = [r[r >= 0] for r in blocks[cloud] if (r >= 0).any()]
        e = torch.stack([x[r].mean(0) for r in rows])
        a, b = linear(e, block.lin_sort).chunk(2, -1)
        s = plain_sinkhorn(a @ b.T / c ** 0.5 / block.temperature, block.sinkhorn_iters)
        p = block.block_size
        for ai, r in enumerate(rows):
            for hh in range(h):
                hs = slice(hh * d, (hh + 1) * d)
                keys, vals, bias = [k[r, hs]], [v[r, hs]], [torch.zeros(len(r))]
                for slot in range(p):
                    own = [(bi, rb[slot]) for bi, rb in enumerate(rows) if len(rb) > slot]
                    mu = sum(s[ai, bi] for bi, _ in own)
                    keys.append(sum(s[ai, bi] * k[j, hs] for bi, j in own)[None] / mu)
                    vals.append(sum(s[ai, bi] * v[j, hs] for bi, j in own)[None] / mu)
                    bias.append(mu.log()[None])
                w = softmax(q[r, hs] @ torch.cat(keys).T / d ** 0.5 + torch.cat(bias))
                out[r, hs] = w @ torch.cat(vals)
    return linear(out, block.lin_out)


def test_matches_the_formula_float64_with_short_last_blocks():
    x, pos, batch = clouds([11, 6], 6, "cpu", torch.float64)
    block = SinkhornAttention(6, 8, heads=2, block_size=4, temperature=0.5).double()
    expect = reference(block, x, pos, batch)
    torch.testing.assert_close(block(x, batch, pos=pos), expect)
    out, amap = block(x, batch, pos=pos, return_attention=True)
    torch.testing.assert_close(out, expect)
    w = amap.weight  # [B, H, N, N]: reproduces the output
    v = block.lin_qkv(x)[:, 16:].view(17, 2, 4)
    for b, (s, e) in enumerate([(0, 11), (11, 17)]):
        y = torch.einsum("hij,jhd->ihd", w[b, :, :e - s, :e - s], v[s:e]).reshape(-1, 8)
        torch.testing.assert_close(block.lin_out(y), out[s:e])
    torch.testing.assert_close(w.sum(-1)[1, :, :6], torch.ones(2, 6, dtype=torch.float64))


def test_one_block_per_cloud_is_global_attention(device):
    x, pos, batch = clouds([9, 5], 8, device)
    full = GlobalSelfAttention(8, heads=2).to(device)
    block = SinkhornAttention(8, heads=2, block_size=16).to(device)
    block.load_state_dict(full.state_dict(), strict=False)
    torch.testing.assert_close(block(x, batch, pos=pos), full(x, batch))


def test_permutation_equivariance_and_batched_equals_alone(device):
    x, pos, batch = clouds([21, 10], 8, device)
    block = SinkhornAttention(8, heads=2, block_size=4).to(device)
    perm = torch.cat([torch.randperm(21), 21 + torch.randperm(10)]).to(device)
    out = block(x, batch, pos=pos)
    torch.testing.assert_close(block(x[perm], batch, pos=pos[perm]), out[perm])
    torch.testing.assert_close(out[21:], block(x[21:], pos=pos[21:]))


@pytest.mark.parametrize("tau", [0.1, 0.75])
def test_small_temperatures_train_without_nan(device, tau):
    x, pos, batch = clouds([40, 23], 8, device)
    x = (10 * x).requires_grad_(True)  # large scores: sharp sorts
    block = SinkhornAttention(8, heads=2, block_size=4, temperature=tau).to(device)
    block(x, batch, pos=pos).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_gradcheck():
    x, pos, batch = clouds([7, 5], 4, "cpu", torch.float64)
    x.requires_grad_(True)
    block = SinkhornAttention(4, heads=2, block_size=2).double()
    assert torch.autograd.gradcheck(lambda t: block(t, batch, pos=pos), (x,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0.0), "temperature must be > 0, got 0.0"),
    (dict(order="morton"), "order must be one of"),
    (dict(block_size=0), "block_size must be an integer >= 1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SinkhornAttention(8, **kwargs)


def test_missing_pos_says_how_to_call():
    with pytest.raises(ValueError, match=r"needs pos=\[M, 3\]"):
        SinkhornAttention(8, heads=2)(torch.randn(5, 8))
