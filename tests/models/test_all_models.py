"""Every registered model honours the model contract: shapes, gradients, permutation
invariance / equivariance, batching, attention maps tied to the input, and it learns."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from pcattn.models import create_model, list_models
from pcattn.models.registry import model_config_class, model_info
from pcattn.nn.attention_map import AttentionMap, LayerAttention
from helpers import WITHOUT_ATTENTION

NUM_CLASSES, NUM_CATEGORIES = 4, 2


def build(name, device="cpu"):
    fields = {f.name for f in dataclasses.fields(model_config_class(name))}
    cfg = {"num_classes": NUM_CLASSES}
    if "num_categories" in fields:
        cfg["num_categories"] = NUM_CATEGORIES
    for key in ("feature_channels", "in_channels"):  # extra channels: the normals below
        if key in fields:
            cfg[key] = 3
    return create_model(name, **cfg).to(device)


def is_seg(name):
    return model_info(name)["task"] == "part_segmentation"


def make_batch(sizes, seed=0, device="cpu"):
    """Clouds with xyz, unit 'normals' in x, a class per cloud (y) or a part per point."""
    g = torch.Generator().manual_seed(seed)
    clouds = []
    for i, n in enumerate(sizes):
        pos = torch.rand(n, 3, generator=g) * torch.tensor([1.0 + i % 2, 1.0, 0.5 + i % 3])
        x = F.normalize(torch.randn(n, 3, generator=g), dim=-1)
        category = i % NUM_CATEGORIES
        part = 2 * category + (pos[:, 2] > pos[:, 2].median()).long()  # [n]
        clouds.append(Data(pos=pos, x=x, y=torch.tensor([i % NUM_CLASSES]), part=part,
                           category=torch.tensor([category])))
    return Batch.from_data_list(clouds).to(device)


def target(name, batch):
    return batch.part if is_seg(name) else batch.y


MODELS = list_models()
# the paper-sized *_base models train 20 steps in ~30 s each on 2 cores: `-m slow` runs them
SMALL_OR_SLOW = [pytest.param(n, marks=pytest.mark.slow) if n.endswith("_base") else n
                 for n in MODELS]


@pytest.mark.parametrize("name", MODELS)
def test_logits_shape_and_every_parameter_gets_a_finite_gradient(name, device):
    model = build(name, device)
    batch = make_batch([300, 260, 280], device=device)  # deep stages keep >= 2 points
    logits = model(batch)
    assert logits.shape == ((batch.num_nodes if is_seg(name) else 3), NUM_CLASSES)
    F.cross_entropy(logits, target(name, batch)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient for {missing}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient for {bad}"


@pytest.mark.parametrize("name", MODELS)
def test_eval_output_invariant_or_equivariant_to_the_order_of_points(name):
    model = build(name).eval()
    batch = make_batch([40, 27], seed=1)
    g = torch.Generator().manual_seed(3)
    perm = torch.cat([torch.randperm(40, generator=g), 40 + torch.randperm(27, generator=g)])
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    with torch.no_grad():
        out, out_shuffled = model(batch), model(shuffled)
    expect = out[perm] if is_seg(name) else out  # segmentation: rows follow the points
    torch.testing.assert_close(out_shuffled, expect, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_a_batch_equals_each_cloud_alone_even_below_k_points(name):
    model = build(name).eval()
    batch = make_batch([30, 5], seed=2)  # 5 points: fewer than any model's k
    with torch.no_grad():
        both = model(batch)
        alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    assert torch.isfinite(both).all()
    torch.testing.assert_close(both, alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_attention_maps_are_tied_to_the_input_points(name):
    model = build(name).eval()
    batch = make_batch([24, 17], seed=4)
    with torch.no_grad():
        feats = model.forward_features(batch, return_attention=True)
    key = "point" if is_seg(name) else "pooled"
    assert feats[key].shape[0] == (batch.num_nodes if is_seg(name) else 2)
    maps = feats["attention"]
    if name in WITHOUT_ATTENTION:  # the references: an empty list, never a missing key
        assert maps == []
        return
    assert maps and all(isinstance(m, LayerAttention) for m in maps)
    for layer in maps:
        assert isinstance(layer.map, AttentionMap), layer.name
        for index in (layer.query_index, layer.source_index):
            assert index.dtype == torch.long and index.dim() == 1
            assert 0 <= int(index.min()) and int(index.max()) < batch.num_nodes
        query, source, weight = layer.map.to_sparse()
        assert int(source.max()) < layer.source_index.numel(), layer.name
        if layer.map.kind != "pool":  # pool queries are cloud ids
            assert int(query.max()) < layer.query_index.numel(), layer.name
        assert (weight >= 0).all(), layer.name
        sums = weight.new_zeros(int(query.max()) + 1, weight.shape[1]).index_add_(0, query,
                                                                                  weight)
        torch.testing.assert_close(sums, torch.ones_like(sums), msg=layer.name)


@pytest.mark.parametrize("name", SMALL_OR_SLOW)
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(name):
    """Catches dead models (no gradient reaching the output, saturated attention)."""
    torch.manual_seed(0)
    model = build(name)
    for module in model.modules():  # the question is whether gradients move the function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = make_batch([64, 64, 64, 64], seed=5)
    y = target(name, batch)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            return float(F.cross_entropy(model(batch), y))

    before = eval_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)  # 2e-3 is too high for the _base widths
    for _ in range(20):
        model.train()
        loss = F.cross_entropy(model(batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.9 * before, f"{name}: loss {before:.3f} -> {eval_loss():.3f}"
