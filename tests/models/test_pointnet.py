"""PointNet, the no-attention reference: shapes, gradients, point order, batching, a dense
reference forward written with torch ops on ``[B, N, C]``, and learning on the synthetic
shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from pcattn.data.synthetic import SyntheticParts, SyntheticShapes
from pcattn.model_configs.pointnet import PointNetConfig, PointNetSegConfig
from pcattn.models import create_model

NUM_CLASSES, NUM_CATEGORIES = 5, 3
# (norm, tnet): the paper's vanilla network, LayerNorm, and the input T-Net
VARIANTS = [("batch", False), ("layer", False), ("batch", True)]


def small(name, norm="batch", tnet=False, **kw):
    """A narrow PointNet in eval-ready form: random norm statistics and, with ``tnet``, a
    transform that is not the identity (both start trivial otherwise)."""
    cfg = dict(num_classes=NUM_CLASSES, feature_channels=3, channels=(16, 16, 32),
               head_hidden=(16,), dropout=0.0, norm=norm, tnet=tnet, **kw)
    if name == "pointnet_seg":
        cfg.setdefault("num_categories", NUM_CATEGORIES)
    model = create_model(name, **cfg)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
        if tnet:
            model.encoder.tnet.fc.weight.normal_(0, 0.05, generator=g)
            model.encoder.tnet.fc.bias.normal_(0, 0.05, generator=g)
    return model


def make_batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    clouds = []
    for i, n in enumerate(sizes):
        pos = torch.rand(n, 3, generator=g)
        clouds.append(Data(pos=pos, x=F.normalize(torch.randn(n, 3, generator=g), dim=-1),
                           y=torch.tensor([i % NUM_CLASSES]),
                           part=torch.randint(NUM_CLASSES, (n,), generator=g),
                           category=torch.tensor([i % NUM_CATEGORIES])))
    return Batch.from_data_list(clouds)


@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_default_is_the_classic_network(name):
    model = create_model(name)
    assert [layer[0].out_features for layer in model.encoder.layers] == [64, 64, 64, 128, 1024]
    norms = [layer[1] for layer in model.encoder.layers]
    assert all(isinstance(n, torch.nn.BatchNorm1d) and n.momentum == 0.5 for n in norms)
    assert model.encoder.tnet is None
    linears = [m.out_features for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    if name == "pointnet_cls":
        assert linears == [512, 256, 10]
        assert sum(p.numel() for p in model.parameters()) == 811_914
    else:  # 64 + 64 + 64 + 128 local, 1024 global, 16 categories in
        assert model.head.hidden[0].in_features == 1344 + 16
        assert linears == [512, 256, 128, 50]
        assert sum(p.numel() for p in model.parameters()) == 1_020_978


@pytest.mark.parametrize("norm,tnet", VARIANTS)
@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_shapes_and_every_parameter_gets_a_gradient(name, norm, tnet, device):
    model = small(name, norm, tnet).to(device)
    batch = make_batch([50, 31, 12]).to(device)
    feats = model.forward_features(batch, return_attention=True)
    assert feats["attention"] == []
    assert feats["pooled"].shape == (3, 32)
    assert [h.shape for h in feats["layers"]] == [(93, 16), (93, 16), (93, 32)]
    assert (feats["transform"] is None) == (not tnet)
    if tnet:
        assert feats["transform"].shape == (3, 3, 3)
    logits = model(batch)
    if name == "pointnet_seg":
        assert feats["point"].shape == (93, 16 + 16 + 32)
        assert logits.shape == (93, NUM_CLASSES)
        F.cross_entropy(logits, batch.part).backward()
    else:
        assert logits.shape == (3, NUM_CLASSES)
        F.cross_entropy(logits, batch.y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("norm,tnet", VARIANTS)
@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_point_order_invariance_and_equivariance(name, norm, tnet):
    model = small(name, norm, tnet).eval()
    batch = make_batch([40, 27], seed=1)
    g = torch.Generator().manual_seed(3)
    perm = torch.cat([torch.randperm(40, generator=g), 40 + torch.randperm(27, generator=g)])
    shuffled = batch.clone()
    shuffled.pos, shuffled.x = batch.pos[perm], batch.x[perm]
    with torch.no_grad():
        out, out_shuffled = model(batch), model(shuffled)
    expect = out[perm] if name == "pointnet_seg" else out
    torch.testing.assert_close(out_shuffled, expect, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm,tnet", VARIANTS)
@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_clouds_of_different_sizes_agree_with_each_cloud_alone(name, norm, tnet):
    model = small(name, norm, tnet).eval()
    batch = make_batch([60, 9, 1, 33], seed=2)
    with torch.no_grad():
        both = model(batch)
        alone = torch.cat([model(Batch.from_data_list([d])) for d in batch.to_data_list()])
    torch.testing.assert_close(both, alone, atol=1e-5, rtol=1e-5)


def dense_reference(sd, pos, x, category, *, norm, tnet, num_layers, seg, num_categories):
    """PointNet on ``[B, N, C]`` with plain torch ops and the weights of a state dict ``sd``
    (eval mode: BatchNorm with its running statistics, no dropout)."""

    def linear(h, key):
        return h @ sd[f"{key}.weight"].T + sd[f"{key}.bias"]

    def layer_norm(h, key, eps=1e-5):
        mean, var = h.mean(-1, keepdim=True), h.var(-1, unbiased=False, keepdim=True)
        return (h - mean) / torch.sqrt(var + eps) * sd[f"{key}.weight"] + sd[f"{key}.bias"]

    def batch_norm(h, key, eps=1e-5):
        return ((h - sd[f"{key}.running_mean"]) / torch.sqrt(sd[f"{key}.running_var"] + eps)
                * sd[f"{key}.weight"] + sd[f"{key}.bias"])

    def mlp(h, prefix, count, stride):  # (Linear, LayerNorm, ReLU[, Dropout]) x count
        for i in range(count):
            h = linear(h, f"{prefix}.{stride * i}")
            h = layer_norm(h, f"{prefix}.{stride * i + 1}").relu()
        return h

    h = torch.cat([pos, x], -1)  # [B, N, 6]
    if tnet:
        t = mlp(h, "encoder.tnet.point_mlp", 3, 3).amax(dim=1)  # [B, 1024]
        t = linear(mlp(t, "encoder.tnet.global_mlp", 2, 3), "encoder.tnet.fc")  # [B, 9]
        a = torch.eye(3, dtype=h.dtype) + t.view(-1, 3, 3)  # [B, 3, 3]
        h = torch.cat([torch.bmm(pos, a), x], -1)  # [B, N, 6]
    outs = []
    for i in range(num_layers):
        h = linear(h, f"encoder.layers.{i}.0")  # [B, N, C_i]
        h = (batch_norm if norm == "batch" else layer_norm)(h, f"encoder.layers.{i}.1")
        h = h.relu()
        outs.append(h)
    glob = h.amax(dim=1)  # [B, C_L]
    if not seg:
        return linear(mlp(glob, "head.hidden", 1, 4), "head.fc")  # [B, classes]
    n = pos.shape[1]
    one_hot = F.one_hot(category, num_categories).to(h.dtype)  # [B, K_c]
    point = torch.cat(outs[:-1] + [glob[:, None].expand(-1, n, -1),
                                   one_hot[:, None].expand(-1, n, -1)], -1)  # [B, N, C]
    return linear(mlp(point, "head.hidden", 1, 4), "head.fc")  # [B, N, parts]


@pytest.mark.parametrize("norm,tnet", VARIANTS)
@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_matches_a_dense_reference_forward(name, norm, tnet):
    model = small(name, norm, tnet).double().eval()
    b, n = 3, 45
    g = torch.Generator().manual_seed(11)
    pos = torch.rand(b, n, 3, generator=g, dtype=torch.float64)
    x = torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    category = torch.tensor([2, 0, 1])
    batch = Batch.from_data_list([Data(pos=pos[i], x=x[i], category=category[i:i + 1])
                                  for i in range(b)])
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ours = model(batch)
    seg = name == "pointnet_seg"
    want = dense_reference(sd, pos, x, category, norm=norm, tnet=tnet, num_layers=3, seg=seg,
                           num_categories=NUM_CATEGORIES)
    torch.testing.assert_close(ours, want.reshape(ours.shape), atol=1e-10, rtol=1e-10)


def test_tnet_starts_at_the_identity():
    torch.manual_seed(0)
    plain = create_model("pointnet_cls", channels=(16, 32), head_hidden=(16,))
    torch.manual_seed(0)
    with_tnet = create_model("pointnet_cls", channels=(16, 32), head_hidden=(16,), tnet=True)
    with_tnet.load_state_dict(plain.state_dict(), strict=False)
    batch = make_batch([20, 13])
    batch.x = None
    plain.eval(), with_tnet.eval()
    with torch.no_grad():
        feats = with_tnet.forward_features(batch)
        torch.testing.assert_close(feats["transform"], torch.eye(3).expand(2, 3, 3))
        torch.testing.assert_close(with_tnet(batch), plain(batch))


def test_inputs_and_config_errors():
    model = small("pointnet_seg")
    batch = make_batch([10, 8])
    batch.category = None
    with pytest.raises(ValueError, match="needs data.category"):
        model(batch)
    batch = make_batch([10, 8])
    batch.x = None
    with pytest.raises(ValueError, match="expects 3 extra feature channels"):
        model(batch)
    without = small("pointnet_seg", num_categories=0)  # no one-hot: data without categories
    assert without(make_batch([10, 8])).shape == (18, NUM_CLASSES)
    with pytest.raises(ValueError, match="norm must be one of"):
        PointNetConfig(norm="group")
    with pytest.raises(ValueError, match="bn_momentum"):
        PointNetConfig(bn_momentum=0.0)
    with pytest.raises(ValueError, match="positive widths"):
        PointNetConfig(channels=())
    with pytest.raises(ValueError, match="num_categories"):
        PointNetSegConfig(num_categories=-1)
    with pytest.raises(ValueError, match="unknown key"):
        create_model("pointnet_cls", k=16)


@pytest.mark.parametrize("name", ["pointnet_cls", "pointnet_seg"])
def test_it_learns_the_synthetic_shapes(name, tmp_path):
    """Twenty steps of the classic network on the built-in data lower the eval-mode loss."""
    if name == "pointnet_cls":
        data = SyntheticShapes(tmp_path, num_points=64, per_class=4, rotation="z")
        model = create_model(name, num_classes=data.num_classes, feature_channels=3)
    else:
        data = SyntheticParts(tmp_path, num_points=64, per_class=4, rotation="z")
        model = create_model(name, num_classes=data.num_classes, feature_channels=3,
                             num_categories=data.num_categories)
    batch = Batch.from_data_list([data[i] for i in range(len(data))])
    y = batch.y  # [B] classes or [M] parts

    def eval_loss():
        model.eval()
        with torch.no_grad():
            return float(F.cross_entropy(model(batch), y))

    torch.manual_seed(0)
    before = eval_loss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        model.train()
        loss = F.cross_entropy(model(batch), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.7 * before, f"{name}: eval loss {before:.3f} -> {after:.3f}"
