from __future__ import annotations

import os

import pytest
import torch
from torch import nn

import pcattn.nn.global_attention as ga
from pcattn.nn.global_attention import GlobalSelfAttention
from pcattn.nn.positional_encoding import FourierPositionalEncoding
from pcattn.ops.batching import unpack

SCORES = ["dot", "additive"]


def clouds(sizes, c, device, dtype=torch.float32):
    x = torch.randn(sum(sizes), c, device=device, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, device=device))
    return x, batch


@pytest.mark.parametrize("score", SCORES)
def test_shapes_and_weights(device, score):
    x, batch = clouds([5, 3], 8, device)
    attn = GlobalSelfAttention(8, 12, heads=3, score=score).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    assert out.shape == (8, 12)
    assert w.shape == (2, 3, 5, 5)
    torch.testing.assert_close(w[0].sum(-1), torch.ones(3, 5, device=device))
    torch.testing.assert_close(w[1, :, :3].sum(-1), torch.ones(3, 3, device=device))
    assert (w[1, :, :, 3:] == 0).all() and (w[1, :, 3:, :] == 0).all()  # padding
    assert (w[1, :, :3, :3] > 0).all()
    torch.testing.assert_close(attn(x, batch), out)  # fused path == explicit path


def test_matches_torch_multihead_attention(device):
    sizes, c, heads = [6, 2, 4], 8, 2
    x, batch = clouds(sizes, c, device)
    ours = GlobalSelfAttention(c, heads=heads).to(device)
    ref = nn.MultiheadAttention(c, heads, batch_first=True).to(device)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.lin_qkv.weight)
        ref.in_proj_bias.copy_(torch.randn(3 * c))
        ours.lin_qkv.bias.copy_(ref.in_proj_bias)
        ref.out_proj.weight.copy_(ours.lin_out.weight)
        ref.out_proj.bias.copy_(torch.randn(c))
        ours.lin_out.bias.copy_(ref.out_proj.bias)
    dense, mask = unpack(x, batch)  # [B, N, C]
    ref_out, ref_w = ref(dense, dense, dense, key_padding_mask=~mask,
                         average_attn_weights=False)
    out, w = ours(x, batch, return_attention=True)
    w = w.weight
    torch.testing.assert_close(out, ref_out[mask])
    valid = mask[:, None, :, None] & mask[:, None, None, :]
    torch.testing.assert_close(w, ref_w * valid)
    torch.testing.assert_close(ours(x, batch), ref_out[mask])


@pytest.mark.parametrize("score", SCORES)
def test_permutation_equivariance(device, score):
    x, batch = clouds([7, 4], 8, device)
    attn = GlobalSelfAttention(8, heads=2, score=score).to(device)
    perm = torch.cat([torch.randperm(7), 7 + torch.randperm(4)]).to(device)
    torch.testing.assert_close(attn(x[perm], batch), attn(x, batch)[perm])


@pytest.mark.parametrize("score", SCORES)
def test_batched_equals_alone(device, score):
    x, batch = clouds([6, 3], 8, device)
    attn = GlobalSelfAttention(8, heads=2, score=score).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    out0, w0 = attn(x[:6], None, return_attention=True)
    w0 = w0.weight
    out1, w1 = attn(x[6:], None, return_attention=True)
    w1 = w1.weight
    torch.testing.assert_close(out, torch.cat([out0, out1]))
    torch.testing.assert_close(w[0], w0[0])
    torch.testing.assert_close(w[1, :, :3, :3], w1[0])


@pytest.mark.parametrize("score", SCORES)
def test_no_gradient_across_clouds_or_from_padding(device, score):
    x, batch = clouds([6, 3], 8, device)
    x.requires_grad_(True)
    attn = GlobalSelfAttention(8, heads=2, score=score).to(device)
    attn(x, batch)[6:].sum().backward()  # the small cloud, padded to 6
    assert (x.grad[:6] == 0).all()
    assert (x.grad[6:].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("score", SCORES)
def test_all_parameters_get_gradients(device, score):
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    pe = FourierPositionalEncoding(2, out_channels=8)
    attn = GlobalSelfAttention(8, heads=2, score=score, pos_encoding=pe).to(device)
    attn(x, batch, pos=pos).square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("score", SCORES)
def test_gradcheck(device, score):
    x, batch = clouds([3, 2], 4, device, torch.float64)
    x.requires_grad_(True)
    attn = GlobalSelfAttention(4, heads=2, score=score).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: attn(t, batch), (x,))
    assert torch.autograd.gradcheck(lambda t: attn(t, batch, return_attention=True)[1].weight, (x,))


def test_additive_chunks_match_one_block(device, monkeypatch):
    x, batch = clouds([9, 5], 8, device)
    x.requires_grad_(True)
    attn = GlobalSelfAttention(8, heads=2, score="additive").to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    (g_full,) = torch.autograd.grad(out.sum(), x)
    monkeypatch.setattr(ga, "_CHUNK_ELEMS", 2 * 9 * 8)  # one query row per chunk
    out_c, w_c = attn(x, batch, return_attention=True)
    w_c = w_c.weight
    (g_chunk,) = torch.autograd.grad(out_c.sum(), x)
    torch.testing.assert_close(out_c, out)
    torch.testing.assert_close(w_c, w)
    torch.testing.assert_close(g_chunk, g_full)


def test_additive_score_formula_per_head(device):
    """Bahdanau scoring, each head with its own w_h:
    y_i = W_o [sum_j softmax_j(w_h . tanh(q^h_i + k^h_j)) v^h_j]_h + b_o."""
    x, _ = clouds([5], 6, device)
    attn = GlobalSelfAttention(6, heads=2, score="additive").to(device)
    with torch.no_grad():  # two clearly different heads
        attn.score_weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [-1.5, 0.3, 2.0]]))
    out, w = attn(x, None, return_attention=True)
    wq, wk, wv = attn.lin_qkv.weight.view(3, 6, 6)
    bq, bk, bv = attn.lin_qkv.bias.view(3, 6)
    heads = []
    for h in range(2):
        cols = slice(3 * h, 3 * h + 3)
        q, k = x @ wq[cols].T + bq[cols], x @ wk[cols].T + bk[cols]  # [N, 3]
        v = x @ wv[cols].T + bv[cols]
        s = torch.stack([torch.stack([(attn.score_weight[h] * torch.tanh(q[i] + k[j])).sum()
                                      for j in range(5)]) for i in range(5)])  # [N, N]
        a = torch.exp(s - s.max(-1, keepdim=True).values)
        a = a / a.sum(-1, keepdim=True)
        torch.testing.assert_close(w.weight[0, h], a)
        heads.append(a @ v)  # [N, 3]
    ref = torch.cat(heads, -1) @ attn.lin_out.weight.T + attn.lin_out.bias
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(attn(x), ref)


def test_pos_encoding_convention(device):
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    pe = FourierPositionalEncoding(2, out_channels=8).to(device)
    attn = GlobalSelfAttention(8, heads=2, pos_encoding=pe).to(device)
    plain = GlobalSelfAttention(8, heads=2).to(device)
    plain.load_state_dict(attn.state_dict(), strict=False)
    torch.testing.assert_close(attn(x, batch, pos=pos), plain(x + pe(pos), batch))
    with pytest.raises(ValueError, match="pos="):
        attn(x, batch)


def test_empty_cloud_id_gives_no_nan(device):
    x = torch.randn(4, 8, device=device, requires_grad=True)
    batch = torch.tensor([0, 0, 2, 2], device=device)  # cloud 1 has no nodes
    out, w = GlobalSelfAttention(8, heads=2).to(device)(x, batch, return_attention=True)
    w = w.weight
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert (w[1] == 0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        GlobalSelfAttention(8, 10, heads=4)
    with pytest.raises(ValueError, match="score"):
        GlobalSelfAttention(8, score="cosine")


def _peak_rss_growth_mb(fn) -> float:
    def vm_hwm() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current RSS
    before = vm_hwm()
    fn()
    return (vm_hwm() - before) / 1024


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs Linux /proc/self/clear_refs")
def test_no_dense_attention_matrix_at_8192_nodes():
    n = 8192
    x = torch.randn(n, 128)
    attn = GlobalSelfAttention(128, heads=4).eval()
    attn(x[:64])  # warm-up outside the measurement
    with torch.no_grad():
        grow = _peak_rss_growth_mb(lambda: attn(x))
    # one float32 [4, N, N] matrix alone is 1074 MB; the fused path needs ~20-60 MB
    assert grow < 300, f"peak RSS grew by {grow:.0f} MB"


@pytest.mark.parametrize("score", SCORES)
def test_bias_flag_and_dropout(device, score):
    attn = GlobalSelfAttention(8, heads=2, score=score, bias=False)
    assert attn.lin_qkv.bias is None and attn.lin_out.bias is None
    x, batch = clouds([6, 3], 8, device)
    attn = GlobalSelfAttention(8, heads=2, score=score, dropout=0.5).to(device)
    plain = GlobalSelfAttention(8, heads=2, score=score).to(device)
    plain.load_state_dict(attn.state_dict())
    ref = plain(x, batch)
    torch.testing.assert_close(attn.eval()(x, batch), ref)  # no dropout in eval mode
    attn.train()
    assert not torch.allclose(attn(x, batch), ref)  # fused path (dot) drops weights
    assert not torch.allclose(attn(x, batch, return_attention=True)[0], ref)


def test_additive_chunks_without_gradients(device, monkeypatch):
    x, batch = clouds([9, 5], 8, device)
    attn = GlobalSelfAttention(8, heads=2, score="additive").to(device)
    with torch.no_grad():
        out, w = attn(x, batch, return_attention=True)
        monkeypatch.setattr(ga, "_CHUNK_ELEMS", 2 * 9 * 8)  # one query row per chunk
        out_c, w_c = attn(x, batch, return_attention=True)
    torch.testing.assert_close(out_c, out)
    torch.testing.assert_close(w_c.weight, w.weight)


@pytest.mark.parametrize("score", SCORES)
def test_no_nodes(score):
    attn = GlobalSelfAttention(8, heads=2, score=score)
    out, amap = attn(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long),
                     return_attention=True)
    assert out.shape == (0, 8) and amap.weight.shape == (0, 2, 0, 0)
