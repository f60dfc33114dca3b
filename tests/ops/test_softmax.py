"""Softmaxes over padded neighbourhoods and over the clouds of a packed batch."""

from __future__ import annotations

import torch

from helpers import features
from pcattn.ops import masked_softmax, segment_softmax


def test_masked_softmax_is_a_softmax_over_valid_entries():
    logits = torch.randn(2, 4, 3)
    valid = torch.tensor([[True, False, True, True], [True] * 4])
    w = masked_softmax(logits, valid)
    torch.testing.assert_close(w[0][[0, 2, 3]], torch.softmax(logits[0][[0, 2, 3]], dim=0))
    assert (w[0, 1] == 0).all()
    torch.testing.assert_close(w[1], torch.softmax(logits[1], dim=0))


def test_masked_softmax_empty_row_is_zero_not_nan():
    logits = torch.randn(3, 4, 2, requires_grad=True)
    valid = torch.tensor([[True, True, False, False], [False] * 4, [True] * 4])
    w = masked_softmax(logits, valid)
    assert torch.isfinite(w).all() and (w[1] == 0).all()
    w.sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[1] == 0).all()


def test_segment_softmax_is_softmax_per_cloud_and_stable(device):
    sizes = [7, 1, 12]
    logits, batch = features(sizes, 4, device)
    logits = logits * 300  # far outside exp's float32 range without the max shift
    w = segment_softmax(logits, batch)
    start = 0
    for n in sizes:
        torch.testing.assert_close(w[start:start + n], torch.softmax(logits[start:start + n], 0))
        start += n


def test_segment_softmax_with_num_clouds_and_empty_clouds():
    """Clouds 0 and 2 hold nodes (cloud 1 none, cloud 3 trailing): by hand."""
    logits = torch.tensor([0.0, 1.0, 5.0])
    batch = torch.tensor([0, 0, 2])
    w = segment_softmax(logits, batch, num_clouds=4)
    e = 1 / (1 + torch.e)
    torch.testing.assert_close(w, torch.tensor([e, 1 - e, 1.0]))
