"""`pcattn bench train`: the PyG peer is the same network, the ModelNet40 sizes are the
config's, and one tiny measurement runs end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import pcattn.nn as pnn
from pcattn import ops
from pcattn.bench import train as bench_train


def test_peer_layer_computes_the_pcattn_layer():
    torch.manual_seed(0)
    pos, x = torch.rand(30, 3), torch.randn(30, 8)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([26, 4]))
    idx = ops.knn(pos, 6, batch)  # the 4-point cloud is padded with -1
    ours = pnn.PointTransformerLayer(8, 8)
    peer = bench_train.PyGPointTransformerLayer(8, 8)
    conv = peer.conv
    for a, b in [(ours.lin, conv.lin), (ours.lin_src, conv.lin_src),
                 (ours.lin_dst, conv.lin_dst), (ours.pos_nn, conv.pos_nn),
                 (ours.attn_nn, conv.attn_nn)]:
        b.load_state_dict(a.state_dict())
    torch.testing.assert_close(peer(x, pos, idx), ours(x, pos, idx), atol=1e-5, rtol=1e-5)


def test_peer_network_has_the_classifier_shape():
    ours, peer = (bench_train.build_model(n) for n in
                  ["point_transformer_cls", bench_train.PEER])
    assert sum(p.numel() for p in peer.parameters()) == sum(p.numel() for p in ours.parameters())
    assert isinstance(peer.encoder.stages[0][0].attn, bench_train.PyGPointTransformerLayer)
    assert ours.config.channels == (32, 64, 128, 256) and ours.config.num_classes == 40


def test_modelnet40_sizes_are_the_config_file():
    path = Path(__file__).parents[1] / "configs" / "point_transformer_modelnet40.yaml"
    model = yaml.safe_load(path.read_text())["model"]
    for key, value in bench_train.MODELNET40_POINT_TRANSFORMER.items():
        assert model[key] == (list(value) if isinstance(value, tuple) else value), key


@pytest.mark.parametrize("name", ["point_transformer_cls", "point_transformer_seg",
                                  "pointnet_cls", bench_train.PEER])
def test_measure_model_runs(name):
    row = bench_train.measure_model(name, points=64, batch=2, steps=1)
    assert row["model"] == name and row["params"] > 0
    for key in ("step_s", "data_s", "e2e_s", "step_clouds_per_s"):
        assert row[key] > 0, key
    assert 0 < row["data_share"] < 1
    assert row["gflop"] > 0 and row["matmul_gflops"] > 0 and row["x_floor"] > 0


def test_a_run_config_is_benchmarked_with_its_model_section():
    """configs/gat_modelnet40.yaml as written: its widths, not gat_cls's defaults."""
    model = bench_train.build_model("configs/gat_modelnet40.yaml")
    assert model.config.channels == (32, 64, 128) and model.config.k == 16
    assert model.config.feature_channels == 3  # the benchmark's clouds carry normals
    seg = bench_train.build_model("configs/point_transformer_synthetic_parts.yaml")
    assert seg.config.num_categories > 0  # measured as a segmenter
    rows = bench_train.run(["configs/pointnet_synthetic.yaml"], points=64, batch=2, steps=1)
    assert rows[0]["model"] == "configs/pointnet_synthetic.yaml" and rows[0]["step_s"] > 0
    with pytest.raises(FileNotFoundError):
        bench_train.run(["configs/no_such.yaml"])


def test_a_run_config_takes_overrides_as_bench_budget_does():
    """configs/pct_synthetic.yaml:model.attention=linear: that PCT with linear attention."""
    spec = "configs/pct_synthetic.yaml:model.attention=linear:model.channels=32"
    model = bench_train.build_model(spec)
    assert model.config.attention == "linear" and model.config.channels == 32
    assert any(isinstance(m, pnn.LinearAttention) for m in model.modules())
    rows = bench_train.run([spec], points=64, batch=2, steps=1)
    assert rows[0]["model"] == spec and rows[0]["step_s"] > 0
    with pytest.raises(FileNotFoundError, match="--model: config file not found"):
        bench_train.run(["configs/no_such.yaml:model.k=8"])
    with pytest.raises(ValueError, match="banana"):
        bench_train.run(["configs/pct_synthetic.yaml:model.attention=banana"])


def test_step_flops_counts_forward_and_backward_of_a_linear_map():
    """Linear(a -> b) on n rows: 2nab forward, 2nab for the input's gradient and 2nab for
    the weight's (the bias adds no product)."""
    n, a, b = 5, 7, 3
    lin, x = torch.nn.Linear(a, b), torch.randn(n, a, requires_grad=True)
    assert bench_train.step_flops(lambda t: lin(t).sum().backward(), x) == 6 * n * a * b
    with torch.no_grad():
        assert bench_train.step_flops(lin, x) == 2 * n * a * b
    assert bench_train.matmul_rate(torch.device("cpu"), repeats=1) > 1e6


def test_default_models_and_unknown_name():
    names = bench_train.default_models()
    assert "point_transformer_cls" in names and "point_transformer_seg" in names
    assert "pointnet_cls" in names  # the reference without attention
    assert names[-1] == bench_train.PEER and not any(n.endswith("_seg_base") for n in names)
    with pytest.raises(ValueError, match="unknown model"):
        bench_train.run(["no_such_model"])
