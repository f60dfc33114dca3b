"""reset_parameters(): every block with parameters restores all of them, custom inits included."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from blockzoo import ZOO
from pcattn.nn import (
    AttentionPool,
    GlobalSelfAttention,
    GlobalTokens,
    GraphAttention,
    NadarayaWatsonPool,
    TNet,
)
from pcattn.nn.reset import reset_children

WITH_PARAMETERS = [name for name, e in ZOO.items()
                   if isinstance(e.make(), nn.Module) and list(e.make().parameters())]


def perturb(block: nn.Module) -> None:
    with torch.no_grad():
        for t in block.state_dict().values():
            if t.is_floating_point():
                t.fill_(7.0)


@pytest.mark.parametrize("name", WITH_PARAMETERS)
def test_reset_restores_every_parameter(name):
    block = ZOO[name].make()
    torch.manual_seed(3)
    block.reset_parameters()
    ref = {k: v.clone() for k, v in block.state_dict().items()}
    perturb(block)
    torch.manual_seed(3)
    block.reset_parameters()
    for key, value in block.state_dict().items():
        assert not (value == 7.0).all(), f"{name}.{key} was not reset"
        torch.testing.assert_close(value, ref[key], msg=f"{name}.{key}")


def test_tnet_starts_at_the_identity_again():
    tnet = TNet(3, point_channels=(8,), global_channels=(8,))
    perturb(tnet)
    x = torch.randn(10, 3)
    assert not torch.allclose(tnet(x), torch.eye(3)[None])
    tnet.reset_parameters()
    torch.testing.assert_close(tnet(x), torch.eye(3)[None])
    assert (tnet.fc.weight == 0).all() and (tnet.fc.bias == 0).all()


def _std_ratio(t: torch.Tensor, std: float) -> float:
    return float(t.detach().std()) / std


def test_learned_tokens_and_scores_come_back_at_their_scale():
    tokens = GlobalTokens(64, num_tokens=8, heads=4)  # 512 draws of N(0, 0.02^2)
    pool = AttentionPool(256, heads=8)  # 256 draws of N(0, 1/32)
    gsa = GlobalSelfAttention(256, heads=8, score="additive")  # 256 draws of N(0, 1/32)
    for block in (tokens, pool, gsa):
        perturb(block)
        block.reset_parameters()
    assert 0.85 < _std_ratio(tokens.tokens, 0.02) < 1.15
    assert 0.8 < _std_ratio(pool.query, 32 ** -0.5) < 1.2
    assert 0.8 < _std_ratio(gsa.score_weight, 32 ** -0.5) < 1.2


def test_bandwidth_and_graph_biases_come_back():
    nw = NadarayaWatsonPool(sigma=0.25, learn_sigma=True)
    gat = GraphAttention(4, 4, heads=2, edge_dim=3)
    for block in (nw, gat):
        perturb(block)
        block.reset_parameters()
    assert math.isclose(float(nw.sigma), 0.25, rel_tol=1e-6)
    assert (gat.bias == 0).all() and (gat.lin_src.bias == 0).all()
    assert gat.att.abs().max() <= math.sqrt(6 / (2 + 4)) and gat.att.std() > 0


def test_an_outer_reset_keeps_an_inner_custom_init():
    """A block holding a T-Net resets it through its own reset_parameters."""
    outer = nn.Module()
    outer.tnet = TNet(3, point_channels=(8,), global_channels=(8,))
    outer.lin = nn.Linear(3, 3)
    perturb(outer)
    reset_children(outer)
    assert (outer.tnet.fc.weight == 0).all() and not (outer.lin.weight == 7).any()

