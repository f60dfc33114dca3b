"""The Point Transformer segmenter: shapes, attention maps, category input, gradients,
batching and point order."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.models import create_model


def small(**kw):
    cfg = dict(num_classes=6, num_categories=3, feature_channels=3, channels=(8, 16, 16),
               blocks=(1, 1, 1), k=4, head_hidden=(8,), dropout=0.0)
    cfg.update(kw)
    return create_model("point_transformer_seg", **cfg)


def make_batch(sizes, categories=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    categories = categories or [i % 3 for i in range(len(sizes))]
    return Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g),
                                      x=torch.randn(n, 3, generator=g),
                                      category=torch.tensor([c]))
                                 for n, c in zip(sizes, categories)])


def test_logits_features_and_attention_maps(device):
    model = small().to(device)
    batch = make_batch([40, 23]).to(device)
    assert model(batch).shape == (63, 6)
    feats = model.forward_features(batch, return_attention=True)
    assert feats["point"].shape == (63, 8)
    maps = feats["attention"]
    assert [m.name for m in maps] == ["encoder.0.0", "encoder.1.0", "encoder.2.0",
                                      "decoder.1.0", "decoder.0.0"]
    stages = model.encoder(torch.cat([batch.pos, batch.x], -1), batch.pos, batch.batch)
    for m in maps:
        s = int(m.name.split(".")[1])
        n = stages[s]["x"].shape[0]
        assert m.map.kind == "local" and m.map.weight.shape == (n, 4, (8, 16, 16)[s])
        assert m.query_index.shape == (n,) and torch.equal(m.query_index, m.source_index)
        # the map's nodes are the stage's points: their input positions match
        torch.testing.assert_close(batch.pos[m.query_index], stages[s]["pos"])
    assert model.forward_head(feats["point"], batch.category, batch.batch,
                              pre_logits=True).shape == (63, 8)


def test_every_parameter_gets_a_gradient():
    model = small()
    model(make_batch([40, 23])).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_category_one_hot_changes_the_logits():
    model = small().eval()
    a = model(make_batch([30], categories=[0]))
    b = model(make_batch([30], categories=[2]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="num_categories"):
        model(make_batch([30], categories=[3]))
    batch = make_batch([30])
    del batch.category
    with pytest.raises(ValueError, match="data.category"):
        model(batch)


def test_batched_equals_each_cloud_alone_in_eval_mode():
    model = small().eval()
    batch = make_batch([40, 3])  # the second cloud is smaller than k
    both = model(batch)
    alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-4)


def test_equivariant_to_the_order_of_points():
    torch.manual_seed(0)
    model = small().eval()
    batch = make_batch([40, 33], seed=2)
    g = torch.Generator().manual_seed(5)
    perm = torch.cat([torch.randperm(40, generator=g), 40 + torch.randperm(33, generator=g)])
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    with torch.no_grad():
        torch.testing.assert_close(model(shuffled), model(batch)[perm], atol=1e-5, rtol=1e-5)


def test_wrong_feature_count_is_a_clear_error():
    with pytest.raises(ValueError, match="model.feature_channels"):
        small(feature_channels=0)(make_batch([10]))
