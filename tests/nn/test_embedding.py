from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from pcattn.nn.embedding import NeighborEmbedding, PointEmbedding
from pcattn.nn.global_attention import GlobalSelfAttention
from helpers import brute_knn, randomize_norms


def clouds(sizes, device, dtype=torch.float32):
    pos = torch.randn(sum(sizes), 3, device=device, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, device=device))
    return pos, batch


# --- PointEmbedding ------------------------------------------------------------------

def test_point_embedding_on_graph_node_features(device):
    graphs = [Data(x=torch.randn(n, 5), edge_index=torch.randint(0, n, (2, 2 * n)))
              for n in (4, 6)]
    data = Batch.from_data_list(graphs).to(device)
    assert data.pos is None
    emb = PointEmbedding(5, 8).to(device)
    out = emb(data.x)
    assert out.shape == (10, 8)
    # per node: the same with no edges, and equivariant to a permutation of the nodes
    torch.testing.assert_close(emb(graphs[0].x.to(device)), out[:4])
    perm = torch.randperm(10, device=device)
    torch.testing.assert_close(emb(data.x[perm]), out[perm])
    # and it feeds a global block with the graph batch vector
    y = GlobalSelfAttention(8, heads=2).to(device)(out, data.batch)
    assert y.shape == (10, 8)


def test_point_embedding_integer_and_1d_features(device):
    emb = PointEmbedding(1, 4).to(device)
    labels = torch.tensor([0, 2, 1], device=device)
    torch.testing.assert_close(emb(labels), emb(labels.float()[:, None]))


def test_point_embedding_gradients(device):
    emb = PointEmbedding(3, 8).to(device)
    x = torch.randn(6, 3, device=device, dtype=torch.float64, requires_grad=True)
    emb(x.float()).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in emb.parameters())
    emb64 = PointEmbedding(3, 4).to(device, torch.float64)
    assert torch.autograd.gradcheck(emb64, (x,))


# --- NeighborEmbedding ---------------------------------------------------------------

def test_neighbor_embedding_shapes(device):
    pos, batch = clouds([16, 10], device)
    emb = NeighborEmbedding(3, 16, hidden_channels=4, k=4).to(device)
    out, pos_s, batch_s, sample = emb(None, pos, batch)
    # 16 -> 8 -> 4 and 10 -> 5 -> 3 (ceil)
    assert out.shape == (7, 16) and pos_s.shape == (7, 3)
    assert batch_s.tolist() == [0] * 4 + [1] * 3
    torch.testing.assert_close(pos[sample], pos_s)
    assert (batch[sample] == batch_s).all()
    emb_n = NeighborEmbedding(3, 16, hidden_channels=4, k=4, num_samples=(6, 2))
    out, _, batch_s, _ = emb_n.to(device)(pos, pos, batch)
    assert out.shape == (4, 16) and batch_s.tolist() == [0, 0, 1, 1]


def test_neighbor_embedding_matches_pct_reference(device):
    """Transcribed from PCT's ``Neighbor_Embedding`` / ``sample_and_group`` / ``Local_op``
    (ratios 1: every point is a centre), grouping by a brute-force kNN; the 3-point cloud
    has fewer than k=4 points, so its centres pool their 3 real neighbours only."""
    pos, batch = clouds([7, 3], device)
    emb = NeighborEmbedding(3, 8, hidden_channels=4, k=4, ratios=(1.0, 1.0)).to(device)
    randomize_norms(emb)
    points = emb.embed(pos)  # conv1, bn1, relu, conv2, bn2, relu
    for local_op in (emb.local0, emb.local1):
        rows = []
        for i in range(10):
            idx = brute_knn(pos, 4, batch, pos[i:i + 1], batch[i:i + 1])[0]
            grouped_points = points[idx[idx >= 0]]  # [s, d]
            new_points = points[i].expand_as(grouped_points)
            grouped_points_norm = grouped_points - new_points
            feat = torch.cat([grouped_points_norm, new_points], dim=-1)  # [s, 2d]
            rows.append(local_op(feat).max(0).values)  # Local_op: LBR, LBR, max
        points = torch.stack(rows)
    out, pos_s, batch_s, sample = emb(None, pos, batch)
    assert sample.tolist() == list(range(10))
    torch.testing.assert_close(out, points)


def per_node(emb, x, pos, batch):
    """Scatter the output back to the input node it was sampled at (ratios 1 keep all)."""
    out, _, _, sample = emb(x, pos, batch)
    full = out.new_zeros(pos.shape[0], out.shape[1])
    full[sample] = out
    return full


def test_neighbor_embedding_permutation_equivariance(device):
    pos, batch = clouds([9, 5], device)
    emb = NeighborEmbedding(3, 8, hidden_channels=4, k=4, ratios=(1.0, 1.0)).to(device)
    perm = torch.cat([torch.randperm(9), 9 + torch.randperm(5)]).to(device)
    torch.testing.assert_close(per_node(emb, None, pos[perm], batch),
                               per_node(emb, None, pos, batch)[perm])


def test_neighbor_embedding_invariant_to_order_after_fps_start(device):
    pos, batch = clouds([12], device)
    emb = NeighborEmbedding(3, 8, hidden_channels=4, k=4).to(device)
    out, pos_s, _, _ = emb(None, pos, batch)
    perm = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(11)]).to(device)
    out_p, pos_sp, _, _ = emb(None, pos[perm], batch)  # same FPS start point
    # the same centres are chosen; they come back in index order, so match them by position
    order, order_p = pos_s[:, 0].argsort(), pos_sp[:, 0].argsort()
    torch.testing.assert_close(pos_sp[order_p], pos_s[order])
    torch.testing.assert_close(out_p[order_p], out[order])


def test_neighbor_embedding_batched_equals_alone_with_small_cloud(device):
    pos, batch = clouds([12, 3], device)  # the small cloud has fewer points than k
    emb = NeighborEmbedding(3, 8, hidden_channels=4, k=5).to(device)
    out, *_ = emb(None, pos, batch)
    out0, *_ = emb(None, pos[:12])
    out1, *_ = emb(None, pos[12:])
    torch.testing.assert_close(out, torch.cat([out0, out1]))
    assert torch.isfinite(out).all()


def test_neighbor_embedding_gradients_and_no_leak(device):
    pos, batch = clouds([12, 3], device)
    x = torch.randn(15, 3, device=device, requires_grad=True)
    emb = NeighborEmbedding(3, 8, hidden_channels=4, k=5).to(device)
    out, _, batch_s, _ = emb(x, pos, batch)
    out[batch_s == 1].square().sum().backward(retain_graph=True)
    assert (x.grad[:12] == 0).all() and x.grad[12:].abs().sum() > 0
    out.square().sum().backward()
    for name, p in emb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_neighbor_embedding_gradcheck(device):
    pos, batch = clouds([4, 2], device, torch.float64)
    x = torch.randn(6, 2, device=device, dtype=torch.float64, requires_grad=True)
    emb = NeighborEmbedding(2, 4, hidden_channels=2, k=3).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: emb(t, pos, batch)[0], (x,))


def test_architecture_and_defaults_follow_pct():
    """PCT: H=64, C=256, k=32; every stage is LBR, LBR (ReLU last); widths 2H -> C/2 -> C."""
    emb = NeighborEmbedding(3)
    assert (emb.out_channels, emb.embed[0].out_features, emb.k) == (256, 64, 32)
    lbr2 = [nn.Linear, nn.LayerNorm, nn.ReLU] * 2
    for stage in (emb.embed, emb.local0, emb.local1):
        assert [type(m) for m in stage] == lbr2
    assert (emb.local0[0].in_features, emb.local0[0].out_features) == (128, 128)
    assert (emb.local1[0].in_features, emb.local1[0].out_features) == (256, 256)
    assert [type(m) for m in PointEmbedding(3, 8).mlp] == lbr2
    with pytest.raises(ValueError, match="out_channels must be even, got 7"):
        NeighborEmbedding(3, 7)
