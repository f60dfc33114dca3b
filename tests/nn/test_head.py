"""ClassificationHead and SegmentationHead: values by hand, the category one-hot."""

from __future__ import annotations

import pytest
import torch

from torch import nn

from pcattn.nn import ClassificationHead, SegmentationHead
from helpers import features, layer_norm, linear, randomize_norms


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
    with pytest.raises(ValueError, match="category given but the head was built without"):
        SegmentationHead(6, 5)(x, category=torch.tensor([0]))


def test_classification_head_by_hand(device):
    """logits = fc(Dropout(ReLU(LN(W_2 Dropout(ReLU(LN(W_1 x))))))); dropout only in train."""
    x, _ = features([5], 6, device)
    head = ClassificationHead(6, 3, hidden_channels=(8, 7), dropout=0.5).to(device).eval()
    randomize_norms(head)
    h = x
    for lin, norm in [(head.hidden[0], head.hidden[1]), (head.hidden[4], head.hidden[5])]:
        h = torch.relu(layer_norm(linear(h, lin), norm))
    torch.testing.assert_close(head(x, pre_logits=True), h)
    torch.testing.assert_close(head(x), linear(h, head.fc))
    assert [type(m) for m in head.hidden[:4]] == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Dropout]
    head.train()
    assert not torch.allclose(head(x), linear(h, head.fc))  # dropout active in training


def test_heads_without_hidden_layers_are_linear(device):
    x, batch = features([4, 3], 6, device)
    cls = ClassificationHead(6, 3, hidden_channels=()).to(device)
    torch.testing.assert_close(cls(x), linear(x, cls.fc))
    seg = SegmentationHead(6, 5, num_categories=2, hidden_channels=()).to(device)
    one_hot = torch.tensor([[1.0, 0]] * 4 + [[0, 1.0]] * 3, device=device)
    torch.testing.assert_close(seg(x, batch, category=torch.tensor([0, 1], device=device)),
                               linear(torch.cat([x, one_hot], -1), seg.fc))
