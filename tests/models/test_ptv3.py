"""The PTv3-style models with patches much smaller than the clouds: permutations, clouds that
never mix, the order schedule, the encodings, the config's errors."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.model_configs.ptv3 import PTv3Config
from pcattn.models import create_model

SMALL = dict(channels=(8, 16, 16), depths=(2, 1, 1), heads=(2, 2, 4), patch_size=8,
             head_hidden=(16,), num_classes=3)


def clouds(sizes=(60, 45), seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([
        Data(pos=torch.rand(n, 3, generator=g) * (1 + i), category=torch.tensor([i % 2]))
        for i, n in enumerate(sizes)])


def within_clouds_permutation(sizes=(60, 45), seed=1):
    g = torch.Generator().manual_seed(seed)
    starts = torch.tensor((0,) + tuple(sizes[:-1])).cumsum(0)
    return torch.cat([s + torch.randperm(n, generator=g) for s, n in zip(starts, sizes)])


@pytest.mark.parametrize("name,extra", [("ptv3_cls", {}), ("ptv3_seg", {"num_categories": 2}),
                                        ("ptv3_seg", {"num_categories": 0,
                                                      "pos_encoding": "knn"})])
def test_permutation_and_clouds_alone_with_many_patches(name, extra):
    torch.manual_seed(0)
    model = create_model(name, **SMALL, **extra).eval()
    data = clouds()
    perm = within_clouds_permutation()
    shuffled = data.clone()
    shuffled.pos = data.pos[perm]
    with torch.no_grad():
        out, out_p = model(data), model(shuffled)
        alone = torch.cat([model(Batch.from_data_list([d])) for d in data.to_data_list()])
    torch.testing.assert_close(out_p, out[perm] if name.endswith("seg") else out,
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-4)


def test_patch_maps_stay_within_a_cloud_and_follow_the_orders():
    model = create_model("ptv3_seg", **SMALL, num_categories=2).eval()
    data = clouds()
    with torch.no_grad():
        maps = model.forward_features(data, return_attention=True)["attention"]
    assert [m.name for m in maps] == ["encoder.0.0", "encoder.0.1", "encoder.1.0",
                                      "encoder.2.0", "decoder.1.0", "decoder.0.0"]
    for layer in maps:
        query, source, weight = layer.map.to_sparse()
        assert layer.map.kind == "patch" and layer.map.idx.shape[1] == 8
        assert torch.equal(data.batch[layer.query_index[query]],
                           data.batch[layer.source_index[source]]), layer.name
    first, second = maps[0].map.idx, maps[1].map.idx  # two blocks, two orders
    assert not torch.equal(first, second)


def test_training_shuffles_the_orders_and_eval_keeps_them():
    model = create_model("ptv3_cls", **SMALL)
    torch.manual_seed(0)
    seen = {model.encoder.orders() for _ in range(8)}
    assert len(seen) > 1 and all(sorted(o) == sorted(model.config.orders) for o in seen)
    model.eval()
    assert model.encoder.orders() == model.config.orders
    fixed = create_model("ptv3_cls", **SMALL, shuffle_orders=False)
    assert fixed.encoder.orders() == fixed.config.orders


def test_the_encodings_and_a_fixed_grid_run_and_learn_a_gradient():
    data = clouds()
    for extra in ({"pos_encoding": "none"}, {"pos_encoding": "knn"}, {"grid_size": 0.05}):
        model = create_model("ptv3_cls", **SMALL, **extra)
        model(data).sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, (extra, missing)


@pytest.mark.parametrize("bad,message", [
    (dict(channels=(8, 16), depths=(1,), heads=(2, 2)), "one entry per stage"),
    (dict(channels=(8,), depths=(1,), heads=(3,)), "divisible by its heads"),
    (dict(orders=("z", "peano")), "orders must be"),
    (dict(pos_encoding="linear"), "pos_encoding must be"),
    (dict(grid_size=-1.0), "grid_size must be"),
    (dict(patch_size=0), "patch_size"),
])
def test_config_errors_name_the_field(bad, message):
    with pytest.raises(ValueError, match=message):
        PTv3Config(**bad)
