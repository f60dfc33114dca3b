"""TransitionUp: interpolation worked by hand, skip connection, and a down-up round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn import ops
from pcattn.nn import NadarayaWatsonPool, TransitionDown, TransitionUp
from helpers import brute_knn, clouds


def coarse_and_fine(device, dtype=torch.float32):
    """Coarse clouds [6, 3] points, fine clouds [15, 7] points (the fine ones contain them)."""
    x, pos, batch = clouds([15, 7], 4, device, dtype)
    sel = torch.tensor([0, 3, 5, 8, 11, 14, 15, 18, 21], device=device)
    xc = torch.randn(9, 6, generator=torch.Generator().manual_seed(1), dtype=dtype).to(device)
    return xc, pos[sel], batch[sel], x, pos, batch


def test_inverse_distance_by_hand_with_padding(device):
    # coarse points at x = 0 and x = 2; a fine point at x = 0.5: 1/d^2 = 4 and 4/9
    # -> weights 0.9 and 0.1. k=3 > 2 coarse points: the padded slot gets no weight.
    pos_c = torch.tensor([[0.0, 0, 0], [2, 0, 0]], device=device)
    x_c = torch.randn(2, 5, device=device)
    pos_f = torch.tensor([[0.5, 0, 0]], device=device)
    x_f = torch.randn(1, 4, device=device)
    up = TransitionUp(5, 8, skip_channels=4, k=3).to(device)
    out = up(x_c, pos_c, x_skip=x_f, query=pos_f)
    h = up.mlp(x_c)
    ref = 0.9 * h[0] + 0.1 * h[1] + up.mlp_skip(x_f)[0]
    assert out.shape == (1, 8)
    torch.testing.assert_close(out[0], ref, atol=1e-5, rtol=1e-5)


def test_nadaraya_watson_upsample_is_pluggable(device):
    xc, pc, bc, xf, pf, bf = coarse_and_fine(device)
    nw = NadarayaWatsonPool(sigma=0.3, k=3, learn_sigma=True)
    up = TransitionUp(6, 8, skip_channels=4, upsample=nw).to(device)
    out = up(xc, pc, bc, x_skip=xf, query=pf, query_batch=bf)
    ref = nw(up.mlp(xc), pc, bc, query=pf, query_batch=bf) + up.mlp_skip(xf)
    torch.testing.assert_close(out, ref)
    out.square().sum().backward()
    assert nw.log_sigma.grad is not None and nw.log_sigma.grad.abs() > 0


def test_batch_equals_each_cloud_alone(device):
    xc, pc, bc, xf, pf, bf = coarse_and_fine(device)
    up = TransitionUp(6, 8, skip_channels=4).to(device)
    out = up(xc, pc, bc, x_skip=xf, query=pf, query_batch=bf)
    assert out.shape == (22, 8)
    for (cs, ce), (fs, fe) in [((0, 6), (0, 15)), ((6, 9), (15, 22))]:
        alone = up(xc[cs:ce], pc[cs:ce], x_skip=xf[fs:fe], query=pf[fs:fe])
        torch.testing.assert_close(out[fs:fe], alone, atol=1e-5, rtol=1e-5)


def test_permutations(device):
    """Equivariant to the fine points' order, invariant to the coarse points' order."""
    xc, pc, bc, xf, pf, bf = coarse_and_fine(device)
    up = TransitionUp(6, 8, skip_channels=4).to(device)
    out = up(xc, pc, bc, x_skip=xf, query=pf, query_batch=bf)
    pf_perm = torch.cat([torch.randperm(15), 15 + torch.randperm(7)]).to(device)
    torch.testing.assert_close(up(xc, pc, bc, x_skip=xf[pf_perm], query=pf[pf_perm],
                                  query_batch=bf), out[pf_perm],
                               atol=1e-5, rtol=1e-5)
    pc_perm = torch.cat([torch.randperm(6), 6 + torch.randperm(3)]).to(device)
    torch.testing.assert_close(up(xc[pc_perm], pc[pc_perm], bc, x_skip=xf, query=pf,
                                  query_batch=bf), out,
                               atol=1e-5, rtol=1e-5)


def test_down_up_round_trip_and_gradients(device):
    x, pos, batch = clouds([24, 9], 4, device)
    down = TransitionDown(4, 8, ratio=0.25, k=4).to(device)
    up = TransitionUp(8, 4, k=3).to(device)
    h, pos_s, batch_s, _ = down(x, pos, batch)
    out = up(h, pos_s, batch_s, x_skip=x, query=pos, query_batch=batch)
    assert out.shape == x.shape
    out.square().sum().backward()
    for name, p in list(down.named_parameters()) + list(up.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    xc, pc, bc, xf, pf, bf = coarse_and_fine(device, torch.float64)
    up = TransitionUp(6, 4, k=3).to(device).double()
    xc.requires_grad_()
    xf.requires_grad_()
    pf.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, p: up(a, pc, bc, x_skip=b, query=p, query_batch=bf), (xc, xf, pf))


def test_transition_down_by_hand_with_padding(device):
    """y_s = max_{j in kNN(s)} MLP([x_j, p_j - p_s]); k=5 > the 3-point cloud: its centres
    pool their 3 real neighbours only (the padded slots are out of the max)."""
    x, pos, batch = clouds([10, 3], 4, device)
    down = TransitionDown(4, 6, ratio=0.5, k=5).to(device)
    out, pos_s, batch_s, sample = down(x, pos, batch)
    assert out.shape == (7, 6) and sample.tolist()[:5] == sorted(sample.tolist()[:5])
    assert batch_s.tolist() == [0] * 5 + [1] * 2  # ceil(0.5 * 10), ceil(0.5 * 3)
    torch.testing.assert_close(pos_s, pos[sample])
    nbrs = brute_knn(pos, 5, batch, pos_s, batch_s)
    for s, i in enumerate(sample.tolist()):
        j = nbrs[s][nbrs[s] >= 0]
        assert j.numel() == (5 if s < 5 else 3)
        feats = torch.cat([x[j], pos[j] - pos[i]], dim=-1)  # [K_s, 4 + 3]
        torch.testing.assert_close(out[s], down.mlp(feats).max(0).values)


def test_architecture_and_defaults():
    """Zhao et al.: down keeps 1/4 of the points, k=16, MLP of LBR layers on [x_j, p_j - p_i];
    up interpolates from 3 neighbours, both paths Linear, LayerNorm, ReLU."""
    down = TransitionDown(4, 6)
    assert (down.ratio, down.k, down.mlp[0].in_features) == (0.25, 16, 7)
    assert [type(m) for m in down.mlp] == [nn.Linear, nn.LayerNorm, nn.ReLU] * 2
    up = TransitionUp(5, 8)
    assert up.k == 3 and up.mlp_skip[0].in_features == 8
    for m in (up.mlp, up.mlp_skip):
        assert [type(t) for t in m] == [nn.Linear, nn.LayerNorm, nn.ReLU]


def test_transition_up_uses_its_k(device):
    """k=2 of 3 coarse points at x = 0, 1, 3; fine point at 0.25: 1/d^2 = 16, 16/9 -> the
    point at 3 gets no weight; the map's sources are the 3 coarse points."""
    pos_c = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]], device=device)
    x_c = torch.randn(3, 5, device=device)
    pos_f = torch.tensor([[0.25, 0, 0]], device=device)
    x_f = torch.randn(1, 8, device=device)
    up = TransitionUp(5, 8, k=2).to(device)
    out, amap = up(x_c, pos_c, x_skip=x_f, query=pos_f, return_attention=True)
    h = up.mlp(x_c)
    ref = 0.9 * h[0] + 0.1 * h[1] + up.mlp_skip(x_f)[0]
    torch.testing.assert_close(out[0], ref, atol=1e-5, rtol=1e-5)
    assert amap.num_sources == 3 and amap.weight.shape == (1, 2, 1)


def test_transition_down_batch_equals_each_cloud_alone(device):
    """Sampling and grouping stay inside each cloud: ceil(11 / 2) + ceil(3 / 2) = 8 centres
    (7 over the batch as one cloud); the second cloud sits far away."""
    x, pos, batch = clouds([11, 3], 4, device)
    pos[11:] += 10.0
    down = TransitionDown(4, 6, ratio=0.5, k=3).to(device)
    out, pos_s, batch_s, sample = down(x, pos, batch)
    alone = [down(x[:11], pos[:11]), down(x[11:], pos[11:])]
    torch.testing.assert_close(out, torch.cat([alone[0][0], alone[1][0]]))
    assert sample.tolist() == alone[0][3].tolist() + (11 + alone[1][3]).tolist()


@pytest.mark.parametrize("backend", ["torch", "open3d"])
def test_transition_down_reuses_the_stage_neighbourhoods(backend, monkeypatch):
    """``neighbors=knn(pos, k, batch)``: the centres' rows of the input's own kNN are their
    neighbourhoods (the same rows a search from the centres finds), and no search runs."""
    x, pos, batch = clouds([40, 3], 4, "cpu")  # the 3-point cloud pads its rows
    down = TransitionDown(4, 6, ratio=0.25, k=5)
    idx = ops.knn(pos, 5, batch, backend=backend)
    searched = down(x, pos, batch)
    sample = searched[3]
    assert torch.equal(idx[sample], ops.knn(pos, 5, batch, query=pos[sample],
                                            query_batch=batch[sample], backend=backend))
    monkeypatch.setattr("pcattn.nn.transition.knn", lambda *a, **k: pytest.fail("searched"))
    reused = down(x, pos, batch, neighbors=idx)
    for a, b in zip(reused, searched):
        torch.testing.assert_close(a, b)


def test_transition_down_neighbors_of_the_wrong_shape():
    x, pos, batch = clouds([40], 4, "cpu")
    down = TransitionDown(4, 6, k=5)
    with pytest.raises(ValueError, match=r"TransitionDown: neighbors must be \[40, 5\] \(the "
                                         r"k=5 nearest input nodes.*got \[40, 4\]"):
        down(x, pos, batch, neighbors=ops.knn(pos, 4, batch))
    with pytest.raises(ValueError, match=r"TransitionDown: neighbors: idx holds 40, outside "
                                         r"\[0, 40\)"):
        down(x, pos, batch, neighbors=torch.full((40, 5), 40))
