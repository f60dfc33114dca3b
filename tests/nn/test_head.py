"""SegmentationHead: per-point logits, with the ShapeNetPart category one-hot."""

from __future__ import annotations

import pytest
import torch

from pcattn.nn import SegmentationHead
from helpers import features


def test_shapes_and_pre_logits(device):
    x, _ = features([10], 6, device)
    head = SegmentationHead(6, 5, hidden_channels=(8, 7)).to(device)
    assert head(x).shape == (10, 5) and head(x, pre_logits=True).shape == (10, 7)


def test_category_one_hot_per_cloud(device):
    """Each node sees its own cloud's category, as if concatenated by hand."""
    x, batch = features([6, 4, 3], 6, device)
    category = torch.tensor([2, 0, 2], device=device)
    head = SegmentationHead(6, 5, num_categories=3, hidden_channels=(8,)).to(device).eval()
    one_hot = torch.zeros(13, 3, device=device)
    one_hot[:6, 2] = one_hot[6:10, 0] = one_hot[10:, 2] = 1
    h = head.hidden(torch.cat([x, one_hot], dim=1))
    out = head(x, batch, category=category)
    torch.testing.assert_close(out, head.fc(h))
    assert not torch.allclose(out[:6], head(x[:6], category=torch.tensor([1], device=device)))
    for s, e, b in [(0, 6, 0), (6, 10, 1), (10, 13, 2)]:
        torch.testing.assert_close(head(x[s:e], category=category[b: b + 1]), out[s:e])
    perm = torch.randperm(6, device=device)
    torch.testing.assert_close(head(x[perm], category=category[:1]), out[:6][perm])


def test_all_parameters_get_gradients(device):
    x, batch = features([6, 4], 6, device)
    head = SegmentationHead(6, 5, num_categories=2).to(device)
    head(x, batch, category=torch.tensor([1, 0], device=device)).square().sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = features([3, 2], 4, device, dtype=torch.float64)
    head = SegmentationHead(4, 3, num_categories=2, hidden_channels=(5,)).to(device)
    head = head.double().eval()
    x.requires_grad_()
    cat = torch.tensor([1, 0], device=device)
    assert torch.autograd.gradcheck(lambda a: head(a, batch, category=cat), (x,))


def test_category_errors():
    x = torch.randn(4, 6)
    with pytest.raises(ValueError, match="pass category"):
        SegmentationHead(6, 5, num_categories=3)(x)
    with pytest.raises(ValueError, match="without num_categories"):
        SegmentationHead(6, 5)(x, category=torch.tensor([0]))
