from __future__ import annotations

import torch
from torch import nn

from pcattn.nn.offset_attention import OffsetAttention
from pcattn.nn.positional_encoding import FourierPositionalEncoding


def clouds(sizes, c, device, dtype=torch.float32):
    x = torch.randn(sum(sizes), c, device=device, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, device=device))
    return x, batch


class PCTSALayer(nn.Module):
    """PCT's ``SA_Layer`` (github.com/MenghaoGuo/PCT), BatchNorm swapped for LayerNorm."""

    def __init__(self, channels):
        super().__init__()
        self.q_conv = nn.Conv1d(channels, channels // 4, 1, bias=False)
        self.k_conv = nn.Conv1d(channels, channels // 4, 1, bias=False)
        self.q_conv.weight = self.k_conv.weight
        self.v_conv = nn.Conv1d(channels, channels, 1)
        self.trans_conv = nn.Conv1d(channels, channels, 1)
        self.after_norm = nn.LayerNorm(channels)
        self.act = nn.ReLU()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):  # [B, C, N]
        x_q = self.q_conv(x).permute(0, 2, 1)  # b, n, c
        x_k = self.k_conv(x)  # b, c, n
        x_v = self.v_conv(x)
        energy = torch.bmm(x_q, x_k)  # b, n, n
        attention = self.softmax(energy)
        attention = attention / (1e-9 + attention.sum(dim=1, keepdims=True))
        x_r = torch.bmm(x_v, attention)  # b, c, n
        t = self.trans_conv(x - x_r)
        x_r = self.act(self.after_norm(t.transpose(1, 2)).transpose(1, 2))
        return x + x_r


def test_matches_pct_reference(device):
    c = 8
    ours = OffsetAttention(c).to(device)
    ref = PCTSALayer(c).to(device)
    with torch.no_grad():
        ref.k_conv.weight.copy_(ours.lin_q.weight[..., None])
        ref.v_conv.weight.copy_(ours.lin_v.weight[..., None])
        ref.v_conv.bias.copy_(ours.lin_v.bias)
        ref.trans_conv.weight.copy_(ours.lbr[0].weight[..., None])
        ref.trans_conv.bias.copy_(ours.lbr[0].bias)
    x, batch = clouds([6, 6], c, device)
    expect = ref(x.view(2, 6, c).transpose(1, 2)).transpose(1, 2).reshape(12, c)
    torch.testing.assert_close(ours(x, batch), expect)


def test_shapes_and_weights(device):
    x, batch = clouds([5, 3], 8, device)
    attn = OffsetAttention(8).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight  # PCT's orientation: [b, 0, i, j] = attention[i, j], columns sum to 1
    assert out.shape == (8, 8) and w.shape == (2, 1, 5, 5)
    torch.testing.assert_close(w[0, 0].sum(-2), torch.ones(5, device=device))
    torch.testing.assert_close(w[1, 0, :, :3].sum(-2), torch.ones(3, device=device))
    assert (w[1, :, 3:] == 0).all() and (w[1, :, :, 3:] == 0).all()
    assert (w[1, 0, :3, :3] > 0).all()
    v = attn.lin_v(x)
    x_r = torch.cat([w[0, 0].T @ v[:5], w[1, 0, :3, :3].T @ v[5:]])  # x_r[j] = sum_i w_ij v_i
    torch.testing.assert_close(out, x + attn.lbr(x - x_r))  # weights are the ones used


def test_permutation_equivariance(device):
    x, batch = clouds([7, 4], 8, device)
    attn = OffsetAttention(8).to(device)
    perm = torch.cat([torch.randperm(7), 7 + torch.randperm(4)]).to(device)
    torch.testing.assert_close(attn(x[perm], batch), attn(x, batch)[perm])


def test_batched_equals_alone(device):
    x, batch = clouds([6, 3], 8, device)
    attn = OffsetAttention(8, share_qk=False).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    out1, w1 = attn(x[6:], None, return_attention=True)
    w1 = w1.weight
    torch.testing.assert_close(out, torch.cat([attn(x[:6]), out1]))
    torch.testing.assert_close(w[1, :, :3, :3], w1[0])


def test_no_gradient_across_clouds(device):
    x, batch = clouds([6, 3], 8, device)
    x.requires_grad_(True)
    attn = OffsetAttention(8).to(device)
    out, w = attn(x, batch, return_attention=True)
    w = w.weight
    (out[6:].sum() + w[1].sum()).backward()
    assert (x.grad[:6] == 0).all()
    assert (x.grad[6:].abs().sum(-1) > 0).all()


def test_all_parameters_get_gradients(device):
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    attn = OffsetAttention(8, share_qk=False,
                           pos_encoding=FourierPositionalEncoding(2, out_channels=8))
    attn = attn.to(device)
    attn(x, batch, pos=pos).square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = clouds([3, 2], 4, device, torch.float64)
    x.requires_grad_(True)
    attn = OffsetAttention(4).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: attn(t, batch), (x,))
    assert torch.autograd.gradcheck(lambda t: attn(t, batch, return_attention=True)[1].weight, (x,))


def test_injectable_norm_and_eval_mode(device):
    x, batch = clouds([5, 3], 8, device)
    attn = OffsetAttention(8, norm_layer=nn.BatchNorm1d).to(device)
    assert isinstance(attn.lbr[1], nn.BatchNorm1d)
    default = OffsetAttention(8).to(device)
    torch.testing.assert_close(default.eval()(x, batch), default.train()(x, batch))


def test_defaults_and_separate_key_map():
    """PCT: q and k share weights, d_a = C / 4, no bias on them."""
    attn = OffsetAttention(16)
    assert attn.lin_k is attn.lin_q and attn.lin_q.out_features == 4
    assert attn.lin_q.bias is None and attn.in_channels == attn.out_channels == 16
    apart = OffsetAttention(16, share_qk=False, qk_channels=3)
    assert apart.lin_k is not apart.lin_q and apart.lin_k.out_features == 3
    assert apart.lin_k.bias is None


def test_fused_path_equals_the_full_matrix_in_float64():
    """Without return_attention the block never builds [N, N]; same numbers, same grads."""
    x, batch = clouds([37, 5, 20], 16, "cpu", dtype=torch.float64)
    x.requires_grad_(True)
    attn = OffsetAttention(16, chunk_size=64).double()  # several chunks in the lse pass
    with torch.no_grad():
        attn.lin_q.weight.mul_(4.0)  # large energies: columns far from uniform
    fused = attn(x, batch)
    full, _ = attn(x, batch, return_attention=True)
    torch.testing.assert_close(fused, full, atol=1e-12, rtol=1e-10)
    g_fused = torch.autograd.grad(fused.square().sum(), [x, *attn.parameters()])
    g_full = torch.autograd.grad(full.square().sum(), [x, *attn.parameters()])
    for a, b in zip(g_fused, g_full):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_fused_path_keeps_pcts_epsilon_on_starved_columns():
    """A node that no row attends to gets x_r ~ 0 from PCT's 1e-9, on both paths."""
    x = torch.zeros(6, 4, dtype=torch.float64)
    x[:5, 0], x[5, 0] = 1.0, 0.5  # every row, node 5's own too, attends to nodes 0-4
    attn = OffsetAttention(4, qk_channels=1).double()
    with torch.no_grad():
        attn.lin_q.weight.copy_(torch.tensor([[60.0, 0, 0, 0]]))
        attn.lin_v.bias.fill_(1.0)
    fused = attn(x)
    full, amap = attn(x, return_attention=True)
    # PCT orientation: column 5 is what node 5 receives; its softmax mass ~e^-900 << 1e-9
    assert float(amap.weight[0, 0, :, 5].sum()) < 1e-6
    # x_r[5] = 0 (without the epsilon it would be a mean of v, whose bias is 1)
    torch.testing.assert_close(fused[5], x[5] + attn.lbr(x[5]))
    torch.testing.assert_close(fused, full, atol=1e-12, rtol=1e-10)


def test_pos_encoding_convention(device):
    """With pos_encoding the block is the plain block applied to x + pos_encoding(pos)."""
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    pe = FourierPositionalEncoding(2, out_channels=8).to(device)
    attn = OffsetAttention(8, pos_encoding=pe).to(device)
    plain = OffsetAttention(8).to(device)
    plain.load_state_dict(attn.state_dict(), strict=False)
    torch.testing.assert_close(attn(x, batch, pos=pos), plain(x + pe(pos), batch))
    assert not torch.allclose(attn(x, batch, pos=pos), plain(x, batch))


def test_chunk_size_none_is_one_chunk(device):
    x, batch = clouds([5, 3], 8, device)
    attn = OffsetAttention(8).to(device)
    whole = OffsetAttention(8, chunk_size=None).to(device)
    whole.load_state_dict(attn.state_dict())
    assert whole.chunk_size is None
    torch.testing.assert_close(whole(x, batch), attn(x, batch))
