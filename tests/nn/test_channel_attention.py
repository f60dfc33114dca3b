"""SqueezeExcitation and EfficientChannelAttention against a direct per-cloud computation."""

from __future__ import annotations

import pytest
import torch

from pcattn.nn import EfficientChannelAttention, SqueezeExcitation
from helpers import features


def se_direct(layer, x_cloud):
    z = x_cloud.mean(0) if layer.pool == "mean" else x_cloud.max(0).values  # [C]
    s = torch.sigmoid(layer.fc2.weight @ torch.relu(layer.fc1.weight @ z + layer.fc1.bias)
                      + layer.fc2.bias)
    return x_cloud * s, s


def eca_direct(layer, x_cloud):
    z = x_cloud.mean(0) if layer.pool == "mean" else x_cloud.max(0).values  # [C]
    w, r = layer.conv.weight.view(-1), layer.kernel_size // 2
    zp = torch.cat([z.new_zeros(r), z, z.new_zeros(r)])
    s = torch.sigmoid(torch.stack([(zp[c: c + 2 * r + 1] * w).sum() for c in range(z.numel())]))
    return x_cloud * s, s


BLOCKS = {
    "se": (lambda c, pool: SqueezeExcitation(c, reduction=2, pool=pool), se_direct),
    "eca": (lambda c, pool: EfficientChannelAttention(c, kernel_size=3, pool=pool), eca_direct),
}


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_matches_direct_computation_per_cloud(device, name, pool):
    make, direct = BLOCKS[name]
    x, batch = features([7, 1, 12], 8, device)
    layer = make(8, pool).to(device)
    out, gate = layer(x, batch, return_attention=True)
    gate = gate.weight
    assert out.shape == (20, 8) and gate.shape == (3, 8)
    for b, (s, e) in enumerate([(0, 7), (7, 8), (8, 20)]):
        ref, ref_gate = direct(layer, x[s:e])
        torch.testing.assert_close(out[s:e], ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(gate[b], ref_gate, atol=1e-6, rtol=1e-5)
        # a cloud alone gives the same as inside the batch
        torch.testing.assert_close(layer(x[s:e]), out[s:e], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_permutation_equivariance(device, name):
    x, batch = features([9, 6], 8, device)
    layer = BLOCKS[name][0](8, "mean").to(device)
    perm = torch.cat([torch.randperm(9), 9 + torch.randperm(6)]).to(device)  # within clouds
    out = layer(x, batch)
    torch.testing.assert_close(layer(x[perm], batch), out[perm], atol=1e-6, rtol=1e-5)


def test_eca_adaptive_kernel_size():
    # k = |(log2 C + 1) / 2|_odd: C=64 -> 3.5 -> 3, C=256 -> 4.5 -> 4 -> 5, C=512 -> 5
    assert EfficientChannelAttention(64).kernel_size == 3
    assert EfficientChannelAttention(256).kernel_size == 5
    assert EfficientChannelAttention(512).kernel_size == 5
    with pytest.raises(ValueError, match="odd"):
        EfficientChannelAttention(8, kernel_size=4)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_all_parameters_get_gradients(device, name):
    x, batch = features([9, 6], 8, device)
    layer = BLOCKS[name][0](8, "mean").to(device)
    layer(x, batch).square().sum().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_gradcheck(device, name):
    x, batch = features([4, 3], 4, device, dtype=torch.float64)
    layer = BLOCKS[name][0](4, "max").to(device).double()
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: layer(a, batch), (x,))


def test_bad_pool():
    with pytest.raises(ValueError, match="pool"):
        SqueezeExcitation(8, pool="sum")


def test_squeeze_excitation_defaults():
    """Hu et al.: reduction 16 in the paper, 4 here; the bottleneck is C / r wide."""
    se = SqueezeExcitation(16)
    assert se.fc1.out_features == 4 and se.fc2.in_features == 4
    assert se.in_channels == se.out_channels == 16
    assert SqueezeExcitation(3).fc1.out_features == 1
