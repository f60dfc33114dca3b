"""Interpolation: inverse distance and Nadaraya-Watson against hand computation."""

from __future__ import annotations

import torch

from pcattn import ops


def test_inverse_distance_by_hand():
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [5, 5, 5]])
    x = torch.tensor([[1.0], [2.0], [4.0], [100.0]])
    q = torch.tensor([[0.5, 0.0, 0.0]])
    out = ops.interpolate(x, pos, query=q, k=3, eps=0.0)
    w = torch.tensor([1 / 0.25, 1 / 0.25, 1 / 4.25])
    torch.testing.assert_close(out, (w * x[:3, 0]).sum().reshape(1, 1) / w.sum())


def test_nadaraya_watson_by_hand_and_sigma_gradient():
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0]])
    x = torch.tensor([[1.0], [2.0], [4.0]])
    q = torch.tensor([[0.5, 0.5, 0.0]])
    sigma = torch.tensor(0.7, requires_grad=True)
    out = ops.interpolate(x, pos, query=q, k=3, mode="nadaraya_watson", sigma=sigma)
    d2 = ((pos - q) ** 2).sum(1)
    w = torch.softmax(-d2 / (2 * 0.49), 0)
    torch.testing.assert_close(out, (w * x[:, 0]).sum().reshape(1, 1))
    out.sum().backward()
    assert sigma.grad is not None and sigma.grad != 0


def test_interpolate_stays_within_cloud():
    pos = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.0, 0.1, 0], [0.05, 0.05, 0]])
    batch = torch.tensor([0, 0, 0, 1])
    x = torch.tensor([[1.0], [1.0], [1.0], [-7.0]])
    q = torch.tensor([[0.04, 0.04, 0.0], [0.0, 0.0, 0.0]])
    out = ops.interpolate(x, pos, batch, query=q, query_batch=torch.tensor([0, 1]), k=3)
    torch.testing.assert_close(out, torch.tensor([[1.0], [-7.0]]))


def test_missing_query_batch_is_a_clear_error():
    import pytest

    pos, batch = torch.rand(6, 3), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="query_batch"):
        ops.interpolate(torch.rand(6, 2), pos, batch, query=torch.rand(2, 3))
