"""NadarayaWatsonPool against closed forms worked by hand, and the pooling contract."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from pcattn import ops
from pcattn.nn import NadarayaWatsonPool
from helpers import clouds


def line(device):
    """Points at x = 0, 1, 2 carrying values 1, 2, 4."""
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]], device=device)
    return torch.tensor([[1.0], [2.0], [4.0]], device=device), pos


def test_closed_form_at_a_given_query(device):
    # q = 0.5, sigma = 1: d^2 = 0.25, 0.25, 2.25 -> weights 1 : 1 : e^-1
    v, pos = line(device)
    pool = NadarayaWatsonPool(sigma=1.0)
    out, w = pool(v, pos, query=torch.tensor([[0.5, 0, 0]], device=device),
                  return_attention=True)
    w = w.weight[..., 0]  # [M_q, K]
    e = math.exp(-1.0)
    torch.testing.assert_close(w, torch.tensor([[1, 1, e]], device=device) / (2 + e))
    torch.testing.assert_close(out, torch.tensor([[(3 + 4 * e) / (2 + e)]], device=device))


def test_closed_form_global_pool_at_the_centroid(device):
    # centroid x = 1, sigma = 0.5: d^2 = 1, 0, 1 -> logits -2, 0, -2 -> weights e^-2 : 1 : e^-2
    v, pos = line(device)
    out, w = NadarayaWatsonPool(sigma=0.5)(v, pos, return_attention=True)
    w = w.weight[..., 0]  # [M_q, K]
    e = math.exp(-2.0)
    assert out.shape == (1, 1) and w.shape == (1, 3)
    torch.testing.assert_close(w, torch.tensor([[e, 1, e]], device=device) / (1 + 2 * e))
    torch.testing.assert_close(out, torch.tensor([[(5 * e + 2) / (1 + 2 * e)]], device=device))


def test_bandwidth_limits_are_mean_and_nearest(device):
    x, pos, batch = clouds([9, 4], 3, device)
    wide = NadarayaWatsonPool(sigma=1e4)(x, pos, batch)
    mean = torch.stack([x[:9].mean(0), x[9:].mean(0)])
    torch.testing.assert_close(wide, mean, atol=1e-5, rtol=1e-5)
    narrow = NadarayaWatsonPool(sigma=1e-3)(x, pos, batch)
    for b, (s, e) in enumerate([(0, 9), (9, 13)]):
        nearest = (pos[s:e] - pos[s:e].mean(0)).norm(dim=-1).argmin()
        torch.testing.assert_close(narrow[b], x[s + nearest])


def test_global_weights_follow_the_unpack_layout(device):
    x, pos, batch = clouds([6, 2, 5], 3, device)
    out, w = NadarayaWatsonPool(sigma=0.3)(x, pos, batch, return_attention=True)
    w = w.weight[..., 0]  # [M_q, K]
    _, mask = ops.unpack(x, batch)
    assert out.shape == (3, 3) and w.shape == mask.shape == (3, 6)
    assert (w[~mask] == 0).all()
    per_node = w[mask]  # [M]: weight of each node within its cloud
    torch.testing.assert_close(out, torch.zeros(3, 3, device=device).index_add_(
        0, batch, per_node[:, None] * x))
    torch.testing.assert_close(w.sum(1), torch.ones(3, device=device))


def test_k_nearest_equals_ops_interpolate(device):
    x, pos, batch = clouds([15, 6], 4, device)
    q, qb = torch.rand(7, 3, device=device), torch.tensor([0, 0, 0, 0, 1, 1, 1], device=device)
    pool = NadarayaWatsonPool(sigma=0.2, k=4)
    ref = ops.interpolate(x, pos, batch, query=q, query_batch=qb, k=4, mode="nadaraya_watson", sigma=0.2)
    torch.testing.assert_close(pool(x, pos, batch, query=q, query_batch=qb), ref)


def test_all_nodes_equals_k_large_and_padding_gets_no_weight(device):
    """k beyond a cloud's size pads with -1: those slots get zero weight and change nothing."""
    x, pos, batch = clouds([10, 3], 4, device)
    q, qb = torch.rand(4, 3, device=device), torch.tensor([0, 0, 1, 1], device=device)
    exact = NadarayaWatsonPool(sigma=0.3)(x, pos, batch, query=q, query_batch=qb)
    out, w = NadarayaWatsonPool(sigma=0.3, k=10)(x, pos, batch, query=q, query_batch=qb, return_attention=True)
    w = w.weight[..., 0]  # [M_q, K]
    torch.testing.assert_close(out, exact, atol=1e-6, rtol=1e-5)
    assert (w[2:, 3:] == 0).all()
    xx = x.clone().requires_grad_()
    NadarayaWatsonPool(sigma=0.3, k=10)(xx, pos, batch, query=q, query_batch=qb).sum().backward()
    assert torch.isfinite(xx.grad).all()


def test_fps_centres_and_batch_equals_alone(device):
    x, pos, batch = clouds([20, 8], 4, device)
    pool = NadarayaWatsonPool(sigma=0.25)
    s = ops.farthest_point_sample(pos, batch, ratio=0.25)  # strided centres
    out = pool(x, pos, batch, query=pos[s], query_batch=batch[s])
    assert out.shape == (s.numel(), 4)
    n0 = int((batch[s] == 0).sum())
    alone = pool(x[20:], pos[20:], query=pos[s[n0:]])
    torch.testing.assert_close(out[n0:], alone, atol=1e-6, rtol=1e-5)
    g = pool(x, pos, batch)
    torch.testing.assert_close(g[1:], pool(x[20:], pos[20:]), atol=1e-6, rtol=1e-5)


def test_permutation_invariance(device):
    x, pos, batch = clouds([11], 4, device)
    perm = torch.randperm(11, device=device)
    q = torch.rand(3, 3, device=device)
    for pool in (NadarayaWatsonPool(sigma=0.3), NadarayaWatsonPool(sigma=0.3, k=4)):
        torch.testing.assert_close(pool(x[perm], pos[perm]), pool(x, pos), atol=1e-6,
                                   rtol=1e-5)
        torch.testing.assert_close(pool(x[perm], pos[perm], query=q), pool(x, pos, query=q),
                                   atol=1e-6, rtol=1e-5)


def test_learned_sigma(device):
    x, pos, batch = clouds([9, 5], 3, device)
    pool = NadarayaWatsonPool(sigma=0.2, learn_sigma=True).to(device)
    assert [n for n, _ in pool.named_parameters()] == ["log_sigma"]
    torch.testing.assert_close(pool.sigma, torch.tensor(0.2, device=device))
    pool(x, pos, batch).square().sum().backward()
    assert pool.log_sigma.grad is not None and pool.log_sigma.grad.abs() > 0
    fixed = NadarayaWatsonPool(sigma=0.2)
    assert list(fixed.parameters()) == [] and "log_sigma" in fixed.state_dict()


def test_gradcheck(device):
    x, pos, batch = clouds([4, 3], 2, device, dtype=torch.float64)
    q = torch.rand(3, 3, dtype=torch.float64, device=device, requires_grad=True)
    qb = torch.tensor([0, 1, 1], device=device)
    pool = NadarayaWatsonPool(sigma=0.4, learn_sigma=True).to(device).double()
    ls = pool.log_sigma.detach().clone().requires_grad_()
    x.requires_grad_()
    pos.requires_grad_()

    def f(a, p, qq, s):
        params = {"log_sigma": s}
        return (functional_call(pool, params, (a, p, batch)),
                functional_call(pool, params, (a, p, batch), {"query": qq, "query_batch": qb}))

    assert torch.autograd.gradcheck(f, (x, pos, q, ls))


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma"):
        NadarayaWatsonPool(sigma=0.0)
    x, pos, batch = clouds([3, 3], 2, "cpu")
    with pytest.raises(ValueError, match="query_batch"):
        NadarayaWatsonPool()(x, pos, batch, query=pos[:2])


def test_defaults_and_messages():
    pool = NadarayaWatsonPool()
    assert float(pool.log_sigma.exp()) == pytest.approx(0.1) and pool.k is None
    assert NadarayaWatsonPool(k=1).k == 1  # one neighbour is allowed
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        NadarayaWatsonPool(k=0)
    with pytest.raises(ValueError, match="query_batch given without query"):
        pool(torch.randn(3, 2), torch.randn(3, 3), query_batch=torch.zeros(1, dtype=torch.long))


def test_map_counts_all_source_nodes():
    """The map's sources are the M input nodes (queries are other points): num_sources = M."""
    x, pos, batch = clouds([6, 2, 5], 3, "cpu")
    _, w = NadarayaWatsonPool(sigma=0.3)(x, pos, batch, return_attention=True)
    assert w.num_sources == 13
    _, w = NadarayaWatsonPool(sigma=0.3, k=2)(x, pos, batch, return_attention=True)
    assert w.num_sources == 13


def test_query_batch_is_needed_only_with_several_clouds():
    pos = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    x, query = torch.randn(4, 5), torch.rand(2, 3)
    pool = NadarayaWatsonPool()
    one_cloud = pool(x, pos, torch.zeros(4, dtype=torch.long), query=query)
    torch.testing.assert_close(one_cloud, pool(x, pos, query=query))
    for batch in ([0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]):  # cloud 1 present: needed
        with pytest.raises(ValueError, match="query_batch is needed with query when batch has "
                                             "several clouds"):
            pool(x, pos, torch.tensor(batch), query=query)
    with pytest.raises(ValueError, match="several clouds"):
        pool(x[:1], pos[:1], torch.tensor([1]), query=query)


def test_repr_shows_the_bandwidth():
    from pcattn.nn import NadarayaWatsonLayer

    assert repr(NadarayaWatsonPool(sigma=0.25, k=8)).endswith(
        "(sigma=0.25, learn_sigma=False, k=8)")
    assert repr(NadarayaWatsonLayer(sigma=2.0, learn_sigma=True)).endswith(
        "(sigma=2, learn_sigma=True)")


def test_no_points_give_zero_features_at_the_queries():
    pool = NadarayaWatsonPool()
    empty = torch.zeros(0, dtype=torch.long)
    out = pool(torch.zeros(0, 4), torch.zeros(0, 3), empty, query=torch.rand(2, 3))
    assert torch.equal(out, torch.zeros(2, 4))
    assert pool(torch.zeros(0, 4), torch.zeros(0, 3), empty).shape == (0, 4)


@pytest.mark.parametrize("k", [None, 2])
def test_a_query_in_a_cloud_without_points_gets_zeros(k):
    pos, x = torch.rand(3, 3), torch.randn(3, 4)
    pool = NadarayaWatsonPool(k=k)
    out = pool(x, pos, torch.zeros(3, dtype=torch.long), query=torch.rand(3, 3),
               query_batch=torch.tensor([0, 1, 1]))
    assert torch.equal(out[1:], torch.zeros(2, 4)) and out[0].abs().sum() > 0
