"""TNet: identity at initialisation, per-cloud transforms, and the orthogonality loss."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn.nn import TNet, apply_transform, orthogonality_loss
from helpers import features


def small(in_channels=3, **kw):
    return TNet(in_channels, point_channels=(8, 16), global_channels=(8,), **kw)


def trained(layer):
    """A T-Net whose last layer has moved away from zero, as after some training."""
    with torch.no_grad():
        layer.fc.weight.normal_(std=0.3)
        layer.fc.bias.normal_(std=0.3)
    return layer


def test_identity_at_init(device):
    x, batch = features([10, 4], 3, device)
    layer = small().to(device)
    a = layer(x, batch)
    assert a.shape == (2, 3, 3)
    torch.testing.assert_close(a, torch.eye(3, device=device).expand(2, 3, 3))
    torch.testing.assert_close(apply_transform(x, a, batch), x)


def test_feature_transform_size(device):
    x, batch = features([6, 5], 7, device)
    a = trained(small(7, dim=5)).to(device)(x, batch)
    assert a.shape == (2, 5, 5)


def test_apply_transform_uses_each_clouds_matrix(device):
    x, batch = features([3, 2], 3, device)
    a = torch.randn(2, 3, 3, device=device)
    y = apply_transform(x, a, batch)
    for i in range(5):
        torch.testing.assert_close(y[i], x[i] @ a[batch[i]])


def test_permutation_invariance_and_batch_equals_alone(device):
    x, batch = features([9, 5], 3, device)
    layer = trained(small()).to(device)
    a = layer(x, batch)
    perm = torch.cat([torch.randperm(9), 9 + torch.randperm(5)]).to(device)
    torch.testing.assert_close(layer(x[perm], batch), a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x[:9]), a[:1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x[9:]), a[1:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[0], a[1])


def test_orthogonality_loss_closed_form(device):
    t = 0.7
    rot = torch.tensor([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0],
                        [0, 0, 1]], device=device)
    assert orthogonality_loss(rot[None]).abs() < 1e-6
    # 2 I: I - 4 I = -3 I -> 3 * 9 = 27; diag(1, 1, 0): one entry 1 -> 1; mean = 14
    a = torch.stack([2 * torch.eye(3), torch.diag(torch.tensor([1.0, 1.0, 0.0]))]).to(device)
    torch.testing.assert_close(orthogonality_loss(a), torch.tensor(14.0, device=device))


def test_all_parameters_get_gradients(device):
    """At init the zero last layer blocks the gradient to the layers before it (by design);
    once it has moved, every parameter learns."""
    x, batch = features([9, 5], 3, device)
    layer = small().to(device)
    y = apply_transform(x, layer(x, batch), batch)
    y.square().sum().backward()
    assert layer.fc.weight.grad.abs().sum() > 0 and layer.fc.bias.grad.abs().sum() > 0
    layer = trained(small()).to(device)
    a = layer(x, batch)
    (apply_transform(x, a, batch).square().sum() + orthogonality_loss(a)).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = features([4, 3], 3, device, dtype=torch.float64)
    layer = trained(small()).to(device).double()
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v: apply_transform(v, layer(v, batch), batch), (x,))
    a = torch.randn(2, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(orthogonality_loss, (a,))


@pytest.mark.parametrize("dim", [None, 4])
def test_default_dim(dim):
    assert small(4, dim=dim).dim == 4


def _reference_mlp(x, linears, norms):
    """``Linear -> LayerNorm -> ReLU`` for every step, the last one included (PointNet)."""
    for lin, norm in zip(linears, norms):
        x = torch.relu(torch.nn.functional.layer_norm(
            x @ lin.weight.T + lin.bias, norm.normalized_shape, norm.weight, norm.bias))
    return x


def test_forward_matches_formula_with_trained_last_layer(device):
    """A_b = I + reshape(fc(MLP_g(max_i MLP_p(x_i)))), both MLPs ending with ReLU."""
    x, batch = features([6, 4], 3, device)
    layer = trained(small()).to(device)
    with torch.no_grad():
        for m in layer.modules():
            if isinstance(m, torch.nn.LayerNorm):  # non-trivial affine, so bias sign matters
                m.weight.normal_()
                m.bias.normal_()
    lin_p = [m for m in layer.point_mlp if isinstance(m, torch.nn.Linear)]
    norm_p = [m for m in layer.point_mlp if isinstance(m, torch.nn.LayerNorm)]
    lin_g = [m for m in layer.global_mlp if isinstance(m, torch.nn.Linear)]
    norm_g = [m for m in layer.global_mlp if isinstance(m, torch.nn.LayerNorm)]
    assert len(norm_p) == len(lin_p) == 2 and len(norm_g) == len(lin_g) == 1
    expected = []
    for b in range(2):
        h = _reference_mlp(x[batch == b], lin_p, norm_p).max(dim=0).values
        g = _reference_mlp(h, lin_g, norm_g)
        delta = (g @ layer.fc.weight.T + layer.fc.bias).view(3, 3)
        expected.append(torch.eye(3, device=device) + delta)
    torch.testing.assert_close(layer(x, batch), torch.stack(expected), atol=1e-5, rtol=1e-5)


def test_identity_buffer_in_state_dict_only_as_non_persistent():
    """The identity is rebuilt by __init__: it is a buffer but not saved with the weights."""
    layer = small()
    assert "identity" in dict(layer.named_buffers())
    assert "identity" not in layer.state_dict()


def test_num_clouds_adds_trailing_clouds(device):
    """num_clouds=3 with clouds 0 and 1 present: three transforms, the first two as without."""
    x, batch = features([5, 4], 3, device)
    layer = trained(small()).to(device)
    a = layer(x, batch, num_clouds=3)
    assert a.shape == (3, 3, 3)
    torch.testing.assert_close(a[:2], layer(x, batch))
