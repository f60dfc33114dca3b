"""The Point Transformer classifier: shapes, attention per stage, gradients, batching."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from pcattn.models import create_model


def small(**kw):
    cfg = dict(num_classes=5, feature_channels=3, channels=(8, 16), blocks=(1, 1), k=4,
               head_hidden=(8,))
    cfg.update(kw)
    return create_model("point_transformer_cls", **cfg)


def make_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g),
                                      x=torch.randn(n, 3, generator=g)) for n in sizes])


def test_logits_and_features(device):
    model = small().to(device)
    batch = make_batch([20, 13]).to(device)
    assert model(batch).shape == (2, 5)
    feats = model.forward_features(batch, return_attention=True)
    assert feats["pooled"].shape == (2, 16)
    s0, s1 = feats["stages"]
    a0, a1 = feats["attention"]
    assert a0.map.kind == "local" and a0.map.weight.shape == (33, 4, 8)
    assert torch.equal(a0.map.idx, s0["idx"]) and torch.equal(a0.query_index.cpu(), torch.arange(33))
    assert s1["x"].shape == (5 + 4, 16) and a1.map.weight.shape == (9, 4, 16)
    assert torch.equal(s1["pos"], s0["pos"][s1["sample"]])
    # stage 1's nodes, through its query/source index, are input points
    assert torch.equal(a1.query_index, s1["index"]) and torch.equal(a1.source_index, s1["index"])
    torch.testing.assert_close(s1["pos"], batch.pos[a1.query_index])
    assert model.forward_head(feats["pooled"], pre_logits=True).shape == (2, 8)


def test_every_parameter_gets_a_gradient():
    model = small()
    model(make_batch([20, 13])).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_batched_equals_each_cloud_alone_in_eval_mode():
    model = small().eval()
    batch = make_batch([20, 3])  # the second cloud is smaller than k
    both = model(batch)
    alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-4)


def test_invariant_to_point_order_that_keeps_the_fps_start():
    model = small().eval()
    data = make_batch([30]).to_data_list()[0]
    perm = torch.cat([torch.tensor([0]), 1 + torch.randperm(29)])  # FPS starts at node 0
    shuffled = Data(pos=data.pos[perm], x=data.x[perm])
    torch.testing.assert_close(model(Batch.from_data_list([shuffled])),
                               model(Batch.from_data_list([data])), atol=1e-5, rtol=1e-4)


def test_wrong_feature_count_is_a_clear_error():
    import pytest

    model = small(feature_channels=0)
    with pytest.raises(ValueError, match="model.feature_channels"):
        model(make_batch([10]))


def test_eval_logits_invariant_to_the_order_of_points():
    torch.manual_seed(0)
    model = small().eval()
    batch = make_batch([40, 33], seed=2)
    g = torch.Generator().manual_seed(5)
    perm = torch.cat([torch.randperm(40, generator=g), 40 + torch.randperm(33, generator=g)])
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    with torch.no_grad():
        torch.testing.assert_close(model(shuffled), model(batch), atol=1e-5, rtol=1e-5)
