"""The graph attention network (gat_cls, gat_seg): shapes, gradients, invariance, the graph
it attends over, and training on real ModelNet meshes as graphs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.models import create_model
from pcattn.ops import knn, neighbors_to_edge_index

REAL_OFF = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "ModelNet_off"


def small(name="gat_cls", **kw):
    cfg = dict(num_classes=5, feature_channels=3, channels=(8, 16), heads=2, k=4,
               head_hidden=(8,))
    if name == "gat_seg":
        cfg["num_categories"] = 2
    cfg.update(kw)
    return create_model(name, **cfg)


def make_batch(sizes, seed=0, edges=False):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(sizes):
        d = Data(pos=torch.rand(n, 3, generator=g), x=torch.randn(n, 3, generator=g),
                 category=torch.tensor([i % 2]))
        if edges:  # a ring: i <-> i + 1
            a = torch.arange(n)
            d.edge_index = torch.cat([torch.stack([a, (a + 1) % n]),
                                      torch.stack([(a + 1) % n, a])], 1)
        out.append(d)
    return Batch.from_data_list(out)


@pytest.mark.parametrize("name", ["gat_cls", "gat_seg"])
def test_shapes_and_attention_maps(name, device):
    model = small(name).to(device).eval()
    batch = make_batch([20, 13]).to(device)
    assert model(batch).shape == ((2, 5) if name == "gat_cls" else (33, 5))
    feats = model.forward_features(batch, return_attention=True)
    assert [a.name for a in feats["attention"]] == ["blocks.0", "blocks.1"]
    for att in feats["attention"]:
        assert att.map.kind == "graph" and att.map.weight.shape[1] == 2
        q, _, w = att.map.to_sparse()
        rows = torch.zeros(33, 2, device=device).index_add_(0, q, w)
        torch.testing.assert_close(rows, torch.ones_like(rows))  # softmax over each target
        assert torch.equal(att.query_index, torch.arange(33, device=device))


@pytest.mark.parametrize("name", ["gat_cls", "gat_seg"])
def test_every_parameter_gets_a_gradient(name):
    model = small(name)
    model(make_batch([20, 13])).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


@pytest.mark.parametrize("name", ["gat_cls", "gat_seg"])
@pytest.mark.parametrize("edges", [False, True])
def test_permutation_of_nodes(name, edges):
    model = small(name).eval()
    batch = make_batch([40, 33], seed=2, edges=edges)
    perm = torch.cat([torch.randperm(40), 40 + torch.randperm(33)])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(73)
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    if edges:
        shuffled.edge_index = inv[batch.edge_index]
    with torch.no_grad():
        want, got = model(batch), model(shuffled)
    torch.testing.assert_close(got, want if name == "gat_cls" else want[perm],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["gat_cls", "gat_seg"])
def test_batched_equals_each_cloud_alone_even_below_k(name):
    model = small(name).eval()
    batch = make_batch([20, 3])
    with torch.no_grad():
        both = model(batch)
        alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    assert torch.isfinite(both).all()
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-4)


def test_attends_over_the_given_graph_with_self_loops_else_knn():
    model = small().eval()
    ring = make_batch([12], edges=True)
    (att, _) = model.forward_features(ring, return_attention=True)["attention"]
    got = set(map(tuple, att.map.edge_index.T.tolist()))
    want = set(map(tuple, ring.edge_index.T.tolist())) | {(i, i) for i in range(12)}
    assert got == want and att.map.edge_index.shape[1] == len(want)
    cloud = make_batch([12])
    (att, _) = model.forward_features(cloud, return_attention=True)["attention"]
    assert torch.equal(att.map.edge_index, neighbors_to_edge_index(knn(cloud.pos, 4)))
    with torch.no_grad():  # the graph matters: same nodes, other edges, other logits
        assert not torch.allclose(model(ring), model(cloud))


def test_relative_position_enters_the_scores_as_an_edge_feature():
    assert small().encoder.blocks[0].attn.edge_dim == 3
    plain = small(edge_features=False)
    assert plain.encoder.blocks[0].attn.lin_edge is None
    assert plain(make_batch([10])).shape == (1, 5)


def test_wrong_feature_count_is_a_clear_error():
    with pytest.raises(ValueError, match="model.feature_channels"):
        small(feature_channels=0)(make_batch([10]))
    with pytest.raises(ValueError, match="divisible by heads"):
        small(channels=(8, 10), heads=4)


def test_base_size_is_near_the_inductive_gat():
    n = sum(p.numel() for p in create_model("gat_cls_base", num_classes=40).parameters())
    assert 2_500_000 < n < 4_500_000


@pytest.mark.skipif(not REAL_OFF.is_dir(), reason="needs ../shared/realdata")
def test_gat_cls_trains_on_real_mesh_graphs_through_the_engine(tmp_path):
    from pcattn.engine.config import config_from_dict
    from pcattn.engine.loop import train

    run = config_from_dict({
        "model": {"name": "gat_cls", "channels": [8, 8], "heads": 2, "head_hidden": [8]},
        "data": {"name": "modelnet40", "graph": "mesh", "root": str(REAL_OFF),
                 "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 1, "batch_size": 2, "device": "cpu",
                  "out_dir": str(tmp_path / "runs")},
    }, run_name="mesh")
    metrics = train(run, progress=False)
    assert metrics["parameters"] > 0 and metrics["history"][0]["train/loss"] > 0
    final = metrics["final"]  # accuracy = correct / samples
    assert final["num_samples"] > 0
    correct = final["overall_accuracy"] * final["num_samples"]
    assert correct == pytest.approx(round(correct), abs=1e-9)
