from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pcattn.nn.cluster_attention import ClusterAttention
from pcattn.nn.global_attention import GlobalSelfAttention
from helpers import features, linear, softmax


def reference(block, x, batch):
    """Per cloud and head: clusters of the unit keys by nearest centroid (cosine), then
    full attention with every key outside the query's cluster masked."""
    h, c = block.heads, block.out_channels
    d, outs = c // h, []
    for b in range(int(batch.max()) + 1):
        q, k, v = linear(x[batch == b], block.lin_qkv).chunk(3, -1)
        heads = []
        for hh in range(h):
            s = slice(hh * d, (hh + 1) * d)
            unit = k[:, s] / k[:, s].norm(dim=-1, keepdim=True)
            cl = (unit @ block.centroids[hh].T).argmax(-1)  # [N]
            logits = q[:, s] @ k[:, s].T / d ** 0.5
            logits = logits.masked_fill(cl[:, None] != cl[None, :], float("-inf"))
            heads.append(softmax(logits) @ v[:, s])
        outs.append(linear(torch.cat(heads, -1), block.lin_out))
    return torch.cat(outs)


def test_matches_masked_full_attention_float64_with_unequal_clusters(device):
    x, batch = features([23, 9, 1], 6, device, torch.float64)
    block = ClusterAttention(6, 8, heads=2, num_clusters=3).to(device, torch.float64).eval()
    cl = block.assign(x[:23])  # [N, H]
    sizes = {int((cl[:, h] == c).sum()) for h in range(2) for c in range(3)}
    assert len(sizes) >= 3 and sizes - {1, 2, 4, 8, 16}, sizes  # unequal, not powers of 2
    expect = reference(block, x, batch)
    torch.testing.assert_close(block(x, batch), expect)  # groups batched by padded length
    out, amap = block(x, batch, return_attention=True)
    torch.testing.assert_close(out, expect)
    w = amap.weight
    assert amap.kind == "global" and w.shape == (3, 2, 23, 23)
    torch.testing.assert_close(w.sum(-1)[1, :, :9], torch.ones(2, 9, device=device,
                                                                 dtype=torch.float64))
    assert (w[2, :, 1:] == 0).all() and (w[2, :, 0, 0] == 1).all()


def test_one_cluster_is_global_attention(device):
    x, batch = features([11, 5], 8, device)
    full = GlobalSelfAttention(8, heads=2).to(device)
    block = ClusterAttention(8, heads=2, num_clusters=1).to(device).eval()
    block.load_state_dict(full.state_dict(), strict=False)
    torch.testing.assert_close(block(x, batch), full(x, batch))


def test_eval_before_any_training_step_is_deterministic(device):
    x, batch = features([17, 6], 8, device)
    torch.manual_seed(3)
    a = ClusterAttention(8, heads=2, num_clusters=4).to(device).eval()
    torch.manual_seed(3)
    b = ClusterAttention(8, heads=2, num_clusters=4).to(device).eval()
    out = a(x, batch)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, b(x, batch))
    torch.testing.assert_close(a.centroids.norm(dim=-1), torch.ones(2, 4, device=device))
    gram = a.centroids @ a.centroids.transpose(1, 2)  # orthonormal at init (n_c <= D)
    torch.testing.assert_close(gram, torch.eye(4, device=device).expand(2, 4, 4))
    torch.testing.assert_close(out[17:], a(x[17:]))  # batched equals alone


def test_training_moves_centroids_by_the_moving_average(device):
    x, batch = features([12, 7], 8, device)
    block = ClusterAttention(8, heads=2, num_clusters=3, decay=0.5).to(device)
    before = block.centroids.clone()
    block.eval()(x, batch)
    assert torch.equal(block.centroids, before)  # eval never moves them
    cl = block.assign(x)  # [M, H]
    k = block.lin_qkv(x).view(19, 3, 2, 4)[:, 1]
    unit = F.normalize(k, dim=-1)
    block.train()(x, batch)
    for h in range(2):
        for c in range(3):
            members = unit[cl[:, h] == c, h]
            if len(members) == 0:
                torch.testing.assert_close(block.centroids[h, c], before[h, c])
            else:
                want = F.normalize(0.5 * before[h, c] + 0.5 * members.mean(0), dim=0)
                torch.testing.assert_close(block.centroids[h, c], want)
    assert "centroids" in block.state_dict()


def test_commitment_loss_by_hand_float64_and_its_gradient_reaches_only_the_keys(device):
    """Mean over nodes and heads of |k_hat - mu_c(k)|^2 with the centroids before the
    moving-average step; its gradient is in the key rows of the projection alone."""
    x, batch = features([13, 6], 8, device, torch.float64)
    block = ClusterAttention(8, heads=2, num_clusters=3, decay=0.5).to(device, torch.float64)
    block.eval()(x, batch)
    assert block.commitment_loss is None
    before, cl = block.centroids.clone(), block.assign(x)  # [H, n_c, D], [M, H]
    k = linear(x, block.lin_qkv)[:, 8:16]  # [M, C]: the key columns
    want = 0.0
    for i in range(19):
        for h in range(2):
            unit = k[i, 4 * h:4 * h + 4] / k[i, 4 * h:4 * h + 4].norm()
            want = want + ((unit - before[h, cl[i, h]]) ** 2).sum()
    block.train()(x, batch)
    assert not torch.equal(block.centroids, before)  # moved after the loss was taken
    torch.testing.assert_close(block.commitment_loss, want / (19 * 2))
    block.commitment_loss.backward()
    g = block.lin_qkv.weight.grad  # [3C, C_in]: query, key and value rows
    assert g[8:16].abs().sum(-1).gt(0).all()
    assert (g[:8] == 0).all() and (g[16:] == 0).all() and block.lin_out.weight.grad is None
    copied = copy.deepcopy(block)  # the loss is of one forward's graph: not copied
    assert copied.commitment_loss is None and torch.equal(copied.centroids, block.centroids)


def test_permutation_equivariance(device):
    x, batch = features([15, 8], 8, device)
    block = ClusterAttention(8, heads=2, num_clusters=3).to(device).eval()
    perm = torch.cat([torch.randperm(15), 15 + torch.randperm(8)]).to(device)
    torch.testing.assert_close(block(x[perm], batch), block(x, batch)[perm])


def test_gradients_stay_in_their_cloud_and_reach_every_parameter(device):
    x, batch = features([10, 6], 8, device)
    x.requires_grad_(True)
    block = ClusterAttention(8, heads=2, num_clusters=2).to(device)
    block(x, batch)[10:].square().sum().backward()
    assert (x.grad[:10] == 0).all() and (x.grad[10:].abs().sum(-1) > 0).all()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = features([7, 4], 4, device, torch.float64)
    x.requires_grad_(True)
    block = ClusterAttention(4, heads=2, num_clusters=2).to(device, torch.float64).eval()
    assert torch.autograd.gradcheck(lambda t: block(t, batch), (x,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_clusters=0), "num_clusters must be an integer >= 1"),
    (dict(decay=1.0), r"decay must be in \[0, 1\), got 1.0"),
    (dict(heads=3), "out_channels=8 is not divisible by heads=3"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ClusterAttention(8, **kwargs)
