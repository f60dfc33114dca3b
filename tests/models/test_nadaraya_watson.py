"""The Nadaraya-Watson baseline (nw_cls, nw_seg): shapes, gradients, invariance, and its
attention maps against the kernel formula written out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.models import create_model
from pcattn.nn import NadarayaWatsonLayer, NadarayaWatsonPool


def small(name="nw_cls", **kw):
    cfg = dict(num_classes=5, feature_channels=3, channels=(8, 16), blocks=(1, 1), k=4,
               head_hidden=(8,))
    if name == "nw_seg":
        cfg["num_categories"] = 2
    cfg.update(kw)
    return create_model(name, **cfg)


def make_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([
        Data(pos=torch.rand(n, 3, generator=g), x=torch.randn(n, 3, generator=g),
             category=torch.tensor([i % 2])) for i, n in enumerate(sizes)])


@pytest.mark.parametrize("name", ["nw_cls", "nw_seg"])
def test_shapes_and_attention_maps(name, device):
    model = small(name).to(device).eval()
    batch = make_batch([20, 13]).to(device)
    logits = model(batch)
    assert logits.shape == ((2, 5) if name == "nw_cls" else (33, 5))
    feats = model.forward_features(batch, return_attention=True)
    key = "pooled" if name == "nw_cls" else "point"
    assert feats[key].shape == ((2, 16) if name == "nw_cls" else (33, 8))
    names = [a.name for a in feats["attention"]]
    tail = ["pool"] if name == "nw_cls" else ["decoder.0.interpolate", "decoder.0.0"]
    assert names == ["stages.0.0", "stages.1.0"] + tail
    for att in feats["attention"]:
        q, src, w = att.map.to_sparse()
        assert w.shape[1] == 1 and (w >= 0).all()
        rows = torch.zeros(att.query_index.numel(), device=device).index_add_(0, q, w[:, 0])
        torch.testing.assert_close(rows, torch.ones_like(rows))  # each query's weights sum to 1
        assert int(src.max()) < att.source_index.numel()
    s0, s1 = feats["stages"]
    assert torch.equal(s1["pos"], batch.pos[s1["index"]])


@pytest.mark.parametrize("name", ["nw_cls", "nw_seg"])
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_every_parameter_gets_a_gradient(name, learn_sigma):
    model = small(name, learn_sigma=learn_sigma)
    model(make_batch([20, 13])).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


@pytest.mark.parametrize("name", ["nw_cls", "nw_seg"])
def test_permutation_of_points(name):
    model = small(name).eval()
    batch = make_batch([40, 33], seed=2)
    perm = torch.cat([torch.randperm(40), 40 + torch.randperm(33)])
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    with torch.no_grad():
        want = model(batch)
        got = model(shuffled)
    torch.testing.assert_close(got, want if name == "nw_cls" else want[perm],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["nw_cls", "nw_seg"])
def test_batched_equals_each_cloud_alone_even_below_k(name):
    model = small(name).eval()
    batch = make_batch([20, 3])  # the second cloud is smaller than k
    with torch.no_grad():
        both = model(batch)
        alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    assert torch.isfinite(both).all()
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-4)


def _hand_knn(p, k):
    """Per node, the k nearest (itself first), by plain Python."""
    out = []
    for i in range(len(p)):
        d = sorted((sum((a - b) ** 2 for a, b in zip(p[i], p[j])), j) for j in range(len(p)))
        out.append([(j, d2) for d2, j in d[:k]])
    return out


def test_block_and_pool_weights_equal_the_kernel_by_hand():
    pts = [[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3], [1, 1, 1], [2, 0, 1]]
    sigma = 0.7
    model = small(channels=(8,), blocks=(1,), k=3, sigma=sigma).eval()
    data = Batch.from_data_list([Data(pos=torch.tensor(pts), x=torch.zeros(6, 3))])
    block, pool = model.forward_features(data, return_attention=True)["attention"]
    near = _hand_knn(pts, 3)
    others = [math.sqrt(d2) for row in near for j, d2 in row[1:]]  # self left out
    h = sum(others) / len(others)  # the stage's neighbourhood scale
    for i, row in enumerate(near):
        ws = [math.exp(-d2 / (2 * (sigma * h) ** 2)) for _, d2 in row]
        got = dict(zip(block.map.idx[i].tolist(), block.map.weight[i, :, 0].tolist()))
        assert got == pytest.approx({j: w / sum(ws) for (j, _), w in zip(row, ws)}, rel=1e-4)
    c = [sum(p[a] for p in pts) / 6 for a in range(3)]
    d2 = [sum((p[a] - c[a]) ** 2 for a in range(3)) for p in pts]
    r = math.sqrt(sum(d2) / 6)  # RMS radius: the pool's scale
    ws = [math.exp(-d / (2 * (sigma * r) ** 2)) for d in d2]
    assert pool.map.kind == "local"  # one row per cloud over its nodes
    got = dict(zip(pool.map.idx[0].tolist(), pool.map.weight[0, :, 0].tolist()))
    assert got == pytest.approx({j: w / sum(ws) for j, w in enumerate(ws)}, rel=1e-4)


def test_decoder_interpolation_weights_equal_the_kernel_by_hand():
    model = small("nw_seg", sigma=0.5).eval()
    data = make_batch([30])
    feats = model.forward_features(data, return_attention=True)
    interp = next(a for a in feats["attention"] if a.name.endswith("interpolate"))
    fine, coarse = feats["stages"]
    pc = coarse["pos"].tolist()
    near = _hand_knn(pc, 4)
    others = [math.sqrt(d2) for row in near for _, d2 in row[1:]]
    h = sum(others) / len(others)  # the coarse stage's scale
    for q, p in enumerate(fine["pos"].tolist()):
        d = sorted((sum((a - b) ** 2 for a, b in zip(p, s)), j) for j, s in enumerate(pc))[:3]
        ws = [math.exp(-d2 / (2 * (0.5 * h) ** 2)) for d2, _ in d]
        got = dict(zip(interp.map.idx[q].tolist(), interp.map.weight[q, :, 0].tolist()))
        assert got == pytest.approx({j: w / sum(ws) for (_, j), w in zip(d, ws)}, rel=1e-4,
                                    abs=1e-7)


def _kernels(model):
    return [m for m in model.modules() if isinstance(m, (NadarayaWatsonLayer,
                                                         NadarayaWatsonPool))]


@pytest.mark.parametrize("name", ["nw_cls", "nw_seg"])
def test_no_parameter_in_attention_but_the_optional_sigma(name):
    fixed, learned = small(name), small(name, learn_sigma=True)
    assert _kernels(fixed) and all(not list(m.parameters()) for m in _kernels(fixed))
    for m in _kernels(learned):
        assert [n for n, _ in m.named_parameters()] == ["log_sigma"]


def test_fixed_and_learned_sigma_agree_at_init_and_only_learned_moves():
    torch.manual_seed(0)
    fixed = small().train(False)
    learned = small(learn_sigma=True).train(False)
    learned.load_state_dict(fixed.state_dict())
    batch = make_batch([25, 18])
    torch.testing.assert_close(learned(batch), fixed(batch))
    for model in (fixed, learned):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        torch.nn.functional.cross_entropy(model(batch), torch.tensor([0, 1])).backward()
        opt.step()
    assert all(float(m.sigma) == pytest.approx(1.0) for m in _kernels(fixed))
    assert any(abs(float(m.sigma.detach()) - 1.0) > 1e-4 for m in _kernels(learned))


def test_fixed_kernel_weights_do_not_change_when_a_cloud_is_rescaled():
    model = small().eval()
    batch = make_batch([30])
    scaled = batch.clone()
    scaled.pos = batch.pos * 7.0
    a = model.forward_features(batch, return_attention=True)["attention"]
    b = model.forward_features(scaled, return_attention=True)["attention"]
    for x, y in zip(a, b):
        torch.testing.assert_close(x.map.weight, y.map.weight, atol=1e-5, rtol=1e-4)


def test_wrong_feature_count_and_missing_category_are_clear_errors():
    with pytest.raises(ValueError, match="model.feature_channels"):
        small(feature_channels=0)(make_batch([10]))
    batch = make_batch([10])
    del batch.category
    with pytest.raises(ValueError, match=r"needs data.category \[B\]"):
        small("nw_seg")(batch)


def test_base_sizes_build():
    assert sum(p.numel() for p in create_model("nw_cls_base").parameters()) > 2_000_000
    assert len(create_model("nw_seg_base", num_categories=3).decoder) == 4
