"""NadarayaWatsonLayer: the kernel over given neighbourhoods, worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn.nn import NadarayaWatsonLayer
from pcattn.ops import knn
from helpers import clouds


def test_closed_form_on_a_line(device):
    # node 1 at x = 1 reads nodes 1, 0, 2 (d^2 = 0, 1, 1) and node 0 reads 0, 1 and padding;
    # sigma = 1: weights 1 : e^-1/2 : e^-1/2 and 1 : e^-1/2
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]], device=device)
    x = torch.tensor([[1.0], [2.0], [4.0]], device=device)
    idx = torch.tensor([[0, 1, -1], [1, 0, 2], [2, 1, 0]], device=device)
    out, amap = NadarayaWatsonLayer(sigma=1.0)(x, pos, idx, return_attention=True)
    e, f = math.exp(-0.5), math.exp(-2.0)
    want = torch.tensor([[1, e, 0], [1, e, e], [1, e, f]], device=device)
    want = want / want.sum(1, keepdim=True)
    assert amap.kind == "local" and torch.equal(amap.idx, idx)
    torch.testing.assert_close(amap.weight[..., 0], want)
    torch.testing.assert_close(out, (want[..., None] * x[idx.clamp(min=0)]).sum(1))


def test_equivariant_and_only_sigma_learns(device):
    x, pos, batch = clouds([12, 5], 4, device)
    idx = knn(pos, 6, batch)
    layer = NadarayaWatsonLayer(sigma=0.2, learn_sigma=True).to(device)
    assert [n for n, _ in layer.named_parameters()] == ["log_sigma"]
    assert not list(NadarayaWatsonLayer(sigma=0.2).parameters())
    out = layer(x, pos, idx)
    perm = torch.cat([torch.randperm(12), 12 + torch.randperm(5)]).to(device)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(17, device=device)
    idx_p = torch.where(idx[perm] >= 0, inv[idx[perm].clamp(min=0)], -1)
    torch.testing.assert_close(layer(x[perm], pos[perm], idx_p), out[perm])
    out.sum().backward()
    assert layer.log_sigma.grad is not None and layer.log_sigma.grad != 0


def test_reset_parameters_restores_the_initial_sigma():
    layer = NadarayaWatsonLayer(sigma=0.3, learn_sigma=True)
    with torch.no_grad():
        layer.log_sigma.add_(1.0)
    layer.reset_parameters()
    assert float(layer.sigma.detach()) == pytest.approx(0.3)


def test_bandwidth_enters_as_two_sigma_squared(device):
    """sigma = 0.5, neighbours at distances 0 and 1: softmax(0, -1 / (2 * 0.25)) = (1, e^-2)."""
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0]], device=device)
    x = torch.tensor([[1.0], [0.0]], device=device)
    idx = torch.tensor([[0, 1], [1, 0]], device=device)
    out = NadarayaWatsonLayer(sigma=0.5)(x, pos, idx)
    w = 1 / (1 + math.exp(-2))
    torch.testing.assert_close(out, torch.tensor([[w], [1 - w]], device=device))
    assert float(NadarayaWatsonLayer().sigma) == 1.0
    with pytest.raises(ValueError, match="sigma must be > 0, got 0"):
        NadarayaWatsonLayer(sigma=0)
