"""Interpolation: inverse distance and Nadaraya-Watson against hand computation."""

from __future__ import annotations

import math

import pytest
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
    pos, batch = torch.rand(6, 3), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="query_batch"):
        ops.interpolate(torch.rand(6, 2), pos, batch, query=torch.rand(2, 3))


def _line(xs):
    """Points on the x axis."""
    return torch.tensor([[x, 0.0, 0.0] for x in xs])


def test_inverse_distance_defaults_to_the_three_nearest():
    pos = _line([0.1, 0.3, 0.6, 1.0, 1.5])
    x = torch.tensor([[1.0], [2.0], [4.0], [8.0], [16.0]])
    out = ops.interpolate(x, pos, query=_line([0.0]))  # k=3, eps=1e-8 by default
    w = [1 / 0.1 ** 2, 1 / 0.3 ** 2, 1 / 0.6 ** 2]
    expect = (w[0] * 1 + w[1] * 2 + w[2] * 4) / sum(w)
    torch.testing.assert_close(out, torch.tensor([[expect]]))


def test_nadaraya_watson_defaults_to_sigma_0_1_and_three_nearest():
    pos = _line([0.1, 0.15, 0.2, 0.25])
    x = torch.tensor([[1.0], [2.0], [4.0], [8.0]])
    out = ops.interpolate(x, pos, query=_line([0.0]), mode="nadaraya_watson")
    e = [math.exp(-d * d / (2 * 0.1 ** 2)) for d in (0.1, 0.15, 0.2)]
    expect = (e[0] * 1 + e[1] * 2 + e[2] * 4) / sum(e)
    torch.testing.assert_close(out, torch.tensor([[expect]]))


def test_interpolation_weights_defaults():
    """k=3 and sigma=0.1 by default, as in interpolate."""
    pos = _line([0.1, 0.15, 0.2, 0.25])
    idx, w = ops.interpolation_weights(pos, query=_line([0.0]), mode="nadaraya_watson")
    e = [math.exp(-d * d / (2 * 0.1 ** 2)) for d in (0.1, 0.15, 0.2)]
    assert idx.tolist() == [[0, 1, 2]]
    torch.testing.assert_close(w, torch.tensor([[v / sum(e) for v in e]]))


def test_interpolate_passes_eps_on():
    pos = _line([0.0, 1.0])
    x = torch.tensor([[1.0], [3.0]])
    out = ops.interpolate(x, pos, query=_line([0.0]), k=2, eps=0.5)
    w = [1 / 0.5, 1 / 1.5]  # 1 / (d^2 + eps)
    torch.testing.assert_close(out, torch.tensor([[(w[0] * 1 + w[1] * 3) / sum(w)]]))


def test_query_batch_defaults_to_batch_when_query_is_pos():
    pos = _line([0.0, 0.2, 0.5, 5.0, 5.1, 5.4])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    x = torch.tensor([[1.0], [2.0], [3.0], [10.0], [20.0], [30.0]])
    out = ops.interpolate(x, pos, batch, query=pos, k=2, mode="nadaraya_watson", sigma=0.5)
    xs, feats = pos[:, 0].tolist(), x[:, 0].tolist()
    expect = []
    for i in range(6):
        same = [j for j in range(6) if batch[j] == batch[i]]
        near = sorted(same, key=lambda j: abs(xs[j] - xs[i]))[:2]
        e = [math.exp(-(xs[j] - xs[i]) ** 2 / (2 * 0.25)) for j in near]
        expect.append([sum(w * feats[j] for w, j in zip(e, near)) / sum(e)])
    torch.testing.assert_close(out, torch.tensor(expect))


@pytest.mark.parametrize("mode", ["inverse_distance", "nadaraya_watson"])
def test_query_cloud_without_reference_points_gets_zero(mode):
    pos = torch.rand(5, 3)
    x = torch.randn(5, 2)
    q = torch.rand(3, 3)
    qb = torch.tensor([0, 1, 1])  # cloud 1 has no reference points
    idx, w = ops.interpolation_weights(pos, torch.zeros(5, dtype=torch.long), query=q,
                                       query_batch=qb, k=2, mode=mode)
    assert (idx[1:] == -1).all() and (w[1:] == 0).all()
    torch.testing.assert_close(w[0].sum(), torch.tensor(1.0))
    out = ops.interpolate(x, pos, torch.zeros(5, dtype=torch.long), query=q, query_batch=qb,
                          k=2, mode=mode)
    assert (out[1:] == 0).all()


def test_interpolate_messages_in_full():
    pos, batch = torch.rand(6, 3), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError) as err:
        ops.interpolate(torch.rand(6, 2), pos, batch, query=torch.rand(2, 3))
    assert str(err.value) == ("batch is given but query_batch is not: pass the cloud id of "
                              "each query point too (query_batch [M_q])")
    with pytest.raises(ValueError) as err:
        ops.interpolate(torch.rand(6, 2), pos, query=pos, mode="idw")
    assert str(err.value) == ("mode must be one of ('inverse_distance', 'nadaraya_watson'), "
                              "got 'idw'")
