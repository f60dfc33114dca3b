"""mlp: Linear -> LayerNorm -> ReLU per step, a bare Linear last (pcattn/nn/mlp.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn.mlp import mlp


def _reference(net, x, *, norm, last_act):
    """The steps by hand from the net's Linear weights: ``relu(LN(W x + b))`` on every step
    but the last, which is ``W x + b`` unless ``last_act``."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        x = x @ lin.weight.T + lin.bias
        if i < len(linears) - 1 or last_act:
            if norm:
                x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(
                    x.var(-1, unbiased=False, keepdim=True) + 1e-5)
            x = x.clamp_min(0)
    return x


@pytest.mark.parametrize("norm, last_act", [(True, False), (False, False), (True, True)])
def test_steps_match_the_formula(norm, last_act):
    net = mlp([3, 5, 7, 2], norm=norm, last_act=last_act)
    x = torch.randn(4, 6, 3)
    torch.testing.assert_close(net(x), _reference(net, x, norm=norm, last_act=last_act))


def test_layers_in_order():
    kinds = [type(m) for m in mlp([3, 5, 7, 2])]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU] * 2 + [nn.Linear]
    kinds = [type(m) for m in mlp([3, 5], norm=False, last_act=True)]
    assert kinds == [nn.Linear, nn.ReLU]
    assert [(m.in_features, m.out_features) for m in mlp([3, 5, 7, 2])
            if isinstance(m, nn.Linear)] == [(3, 5), (5, 7), (7, 2)]

