from __future__ import annotations

import math

import pytest
import torch

from pcattn.nn.point_transformer import PointTransformerLayer
from pcattn.nn.positional_encoding import (
    FourierPositionalEncoding,
    LearnedPositionalEncoding,
    RelativePositionalEncoding,
    apply_pos_encoding,
)
from pcattn.ops.knn import knn


def test_fourier_closed_form(device):
    pe = FourierPositionalEncoding(3, max_frequency=4.0, scale=2.0).to(device)
    pos = torch.randn(5, 3, device=device)
    out = pe(pos)
    assert out.shape == (5, 2 * 3 * 3 + 3) and pe.out_channels == 21
    freqs = torch.tensor([2.0, 4.0, 8.0], device=device)  # 2 * 4^(k/2)
    arg = (pos[:, :, None] * freqs).flatten(1)  # [M, 3 * L], coordinate-major
    torch.testing.assert_close(out, torch.cat([pos, arg.sin(), arg.cos()], dim=1))


def test_fourier_defaults_are_nerf_and_vaswani_is_reachable():
    torch.testing.assert_close(FourierPositionalEncoding(4).freqs,
                               math.pi * 2.0 ** torch.arange(4.0))
    pe = FourierPositionalEncoding(5, in_channels=1, scale=10000 ** -0.8,
                                   max_frequency=10000 ** 0.8, include_input=False)
    d = 10  # Vaswani's 1 / 10000^(2i/d), i = 0..4, in reverse order
    expect = 1.0 / 10000 ** (2 * torch.arange(5.0) / d)
    torch.testing.assert_close(pe.freqs, expect.flip(0))
    assert pe(torch.zeros(2, 1)).shape == (2, 10)


def test_fourier_projection_and_errors(device):
    pe = FourierPositionalEncoding(2, out_channels=16).to(device)
    assert pe(torch.randn(4, 7, 3, device=device)).shape == (4, 7, 16)
    assert pe.out_channels == 16
    with pytest.raises(ValueError, match="coordinates"):
        pe(torch.randn(4, 2, device=device))
    with pytest.raises(ValueError, match="num_frequencies"):
        FourierPositionalEncoding(0)


def test_learned_absolute(device):
    pe = LearnedPositionalEncoding(8, hidden_channels=4).to(device)
    pos = torch.randn(6, 3, device=device)
    out = pe(pos)
    assert out.shape == (6, 8)
    perm = torch.randperm(6, device=device)
    torch.testing.assert_close(pe(pos[perm]), out[perm])
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pe.parameters())


def test_relative_offsets_and_padding(device):
    pos = torch.randn(5, 3, device=device)
    batch = torch.tensor([0, 0, 0, 1, 1], device=device)
    idx = knn(pos, 3, batch)  # cloud 1 has 2 nodes: one -1 per row
    rel = RelativePositionalEncoding.offsets(pos, idx)
    assert rel.shape == (5, 3, 3)
    torch.testing.assert_close(rel[0, 1], pos[0] - pos[idx[0, 1]])
    assert (rel[3:, 2] == 0).all()
    pe = RelativePositionalEncoding(8).to(device)
    out = pe(rel, idx >= 0)
    assert out.shape == (5, 3, 8)
    assert (out[3:, 2] == 0).all() and (out[:3].abs().sum(-1) > 0).all()


def test_relative_is_translation_invariant_and_plugs_into_point_transformer(device):
    pos = torch.randn(6, 3, device=device)
    idx = knn(pos, 4)
    pe = RelativePositionalEncoding(8, hidden_channels=4).to(device)
    a = pe(RelativePositionalEncoding.offsets(pos, idx))
    b = pe(RelativePositionalEncoding.offsets(pos + 3.0, idx))
    torch.testing.assert_close(a, b)
    layer = PointTransformerLayer(5, 8, pos_nn=pe).to(device)
    out = layer(torch.randn(6, 5, device=device), pos, idx)
    assert out.shape == (6, 8)


def test_gradcheck(device):
    pos = torch.randn(4, 3, device=device, dtype=torch.float64, requires_grad=True)
    fourier = FourierPositionalEncoding(2, out_channels=4).to(device, torch.float64)
    learned = LearnedPositionalEncoding(4).to(device, torch.float64)
    assert torch.autograd.gradcheck(fourier, (pos,))
    assert torch.autograd.gradcheck(learned, (pos,))


def test_apply_pos_encoding():
    x, pos = torch.randn(4, 8), torch.randn(4, 3)
    pe = FourierPositionalEncoding(2, out_channels=8)
    torch.testing.assert_close(apply_pos_encoding(x, pos, pe), x + pe(pos))
    assert apply_pos_encoding(x, None, None) is x
    with pytest.raises(ValueError, match="pos="):
        apply_pos_encoding(x, None, pe)
    with pytest.raises(ValueError, match="out_channels"):
        apply_pos_encoding(x, pos, FourierPositionalEncoding(2))


def test_fourier_defaults_exactly():
    """L = 8 by default: NeRF's 2^k pi, k = 0..7, computed in float64 and rounded once to
    float32 (a float32 schedule is an ulp off at k = 7), 2 * 8 * 3 + 3 = 51 features."""
    pe = FourierPositionalEncoding()
    expect = (math.pi * 2.0 ** torch.arange(8, dtype=torch.float64)).float()
    assert pe.freqs.dtype == torch.float32 and torch.equal(pe.freqs, expect)
    assert pe.out_channels == 51 and pe(torch.zeros(2, 3)).shape == (2, 51)


def test_fourier_two_frequencies_span_scale_to_scale_times_max():
    pe = FourierPositionalEncoding(2, in_channels=1, max_frequency=3.0, scale=0.5)
    torch.testing.assert_close(pe.freqs, torch.tensor([0.5, 1.5]))
    pos = torch.tensor([[0.3], [-2.0]])
    expect = torch.cat([pos, (0.5 * pos).sin(), (1.5 * pos).sin(), (0.5 * pos).cos(),
                        (1.5 * pos).cos()], dim=1)
    torch.testing.assert_close(pe(pos), expect)


@pytest.mark.parametrize("max_frequency", [0.5, 1.0])
def test_fourier_any_positive_ratio_is_allowed(max_frequency):
    """max_frequency is a ratio: below 1 the frequencies fall, at 1 they are all ``scale``."""
    pe = FourierPositionalEncoding(3, max_frequency=max_frequency, scale=2.0)
    torch.testing.assert_close(pe.freqs, 2.0 * max_frequency ** torch.tensor([0.0, 0.5, 1.0]))


def test_fourier_without_input_has_2lp_channels():
    pe = FourierPositionalEncoding(4, in_channels=2, include_input=False)
    assert pe.out_channels == 2 * 4 * 2
    assert pe(torch.randn(5, 2)).shape == (5, pe.out_channels)
    proj = FourierPositionalEncoding(4, in_channels=2, include_input=False, out_channels=6)
    assert proj.proj.in_features == 16 and proj(torch.randn(5, 2)).shape == (5, 6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_fourier_keeps_the_dtype_of_pos(dtype):
    pos = torch.randn(5, 3, dtype=dtype)
    out = FourierPositionalEncoding(3)(pos)
    assert out.dtype == dtype
    freqs = (math.pi * 2.0 ** torch.arange(3.0)).to(dtype)  # rounded to pos's dtype
    arg = (pos[:, :, None] * freqs).flatten(1)
    torch.testing.assert_close(out, torch.cat([pos, arg.sin(), arg.cos()], dim=1))


@pytest.mark.parametrize("cls", [LearnedPositionalEncoding, RelativePositionalEncoding])
def test_an_injected_nn_replaces_the_mlp(cls):
    net = torch.nn.Linear(3, 8)
    pe = cls(8, nn=net)
    assert pe.nn is net
    x = torch.randn((5, 3) if cls is LearnedPositionalEncoding else (5, 4, 3))  # pos / rel
    torch.testing.assert_close(pe(x), net(x))


def test_offsets_zero_exactly_at_minus_one():
    """Neighbour 0 is a real neighbour (only -1 is padding): p_i - p_j by hand."""
    pos = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [-2.0, 0.0, 1.5]])
    idx = torch.tensor([[1, 0, -1], [0, 2, -1], [2, 0, 1]])
    rel = RelativePositionalEncoding.offsets(pos, idx)
    for i in range(3):
        for k in range(3):
            j = int(idx[i, k])
            expect = pos[i] - pos[j] if j != -1 else torch.zeros(3)
            torch.testing.assert_close(rel[i, k], expect)
    assert (rel[1, 0] != 0).all()  # j = 0, not padding
