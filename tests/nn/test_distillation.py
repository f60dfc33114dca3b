from __future__ import annotations

import pytest
import torch

from pcattn.nn.distillation import activation_map, attention_distillation_loss
from helpers import clouds, softmax


def psi(x):
    """SAD's map of one cloud, written out: N * softmax(mean_c x^2)."""
    return softmax(x.square().mean(-1), 0) * x.shape[0]


def test_activation_map_per_cloud(device):
    x, _, batch = clouds([6, 3], 5, device, torch.float64)
    got = activation_map(x, batch)
    torch.testing.assert_close(got, torch.cat([psi(x[:6]), psi(x[6:])]))
    torch.testing.assert_close(got[:6].mean(), torch.tensor(1.0, device=device,
                                                            dtype=torch.float64))


def test_loss_by_hand_with_a_coarser_deeper_stage(device):
    """k=1: the deeper stage's mean square reaches each shallow node from its nearest
    deeper node; then per-cloud softmax, MSE against the shallow stage's own map."""
    x, pos, batch = clouds([8, 5], 4, device, torch.float64)
    keep = torch.tensor([0, 3, 5, 8, 11], device=device)  # 3 of cloud 0, 2 of cloud 1
    deep = {"x": torch.randn(5, 6, device=device, dtype=torch.float64), "pos": pos[keep],
            "batch": batch[keep]}
    shallow = {"x": x, "pos": pos, "batch": batch}
    loss = attention_distillation_loss([shallow, deep], k=1)
    expect = []
    for b, (s, e) in enumerate([(0, 8), (8, 13)]):
        kb = keep[batch[keep] == b]
        near = torch.cdist(pos[s:e], pos[kb]).argmin(1)  # [N]
        g = deep["x"][batch[keep] == b].square().mean(-1)[near]
        teacher = softmax(g, 0) * (e - s)
        expect.append((psi(x[s:e]) - teacher).square())
    torch.testing.assert_close(loss, torch.cat(expect).mean())


def test_same_nodes_need_no_interpolation_and_equal_maps_give_zero(device):
    x, pos, batch = clouds([7, 4], 4, device)
    a = {"x": x, "pos": pos, "batch": batch}
    b = {"x": 2 * x + 1, "pos": pos, "batch": batch}
    assert attention_distillation_loss([a, a]) == 0
    torch.testing.assert_close(attention_distillation_loss([a, b, b]),
                               (activation_map(x, batch)
                                - activation_map(2 * x + 1, batch)).square().mean())


def test_the_deeper_stage_is_the_target_and_gets_no_gradient(device):
    x, pos, batch = clouds([9, 6], 4, device, torch.float64)
    x.requires_grad_(True)
    deep_x = torch.randn(6, 5, device=device, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([0, 2, 4, 9, 11, 13], device=device)
    stages = [{"x": x, "pos": pos, "batch": batch},
              {"x": deep_x, "pos": pos[keep], "batch": batch[keep]}]
    attention_distillation_loss(stages).backward()
    assert deep_x.grad is None and x.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda t: attention_distillation_loss([{**stages[0], "x": t}, stages[1]]), (x,))


def test_one_stage_is_an_error():
    x, pos, batch = clouds([4], 3, "cpu")
    with pytest.raises(ValueError, match="needs at least two stages, got 1"):
        attention_distillation_loss([{"x": x, "pos": pos, "batch": batch}])
