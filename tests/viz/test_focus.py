"""Focus statistics against entropies and shares computed by hand, row by row in numpy."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from enginefixtures import untrained_run
from vizhelpers import local_layer, random_local

from pcattn.cli import main
from pcattn.nn.attention_map import AttentionMap, LayerAttention
from pcattn.viz.focus import focus_stats, focus_table, layer_focus, merge_focus
from pcattn.viz.quantities import point_layers
from pcattn.viz.run import load_model, load_sample, run_model


def by_hand(weight: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean normalised entropy and top-1 share per head of a local map, one row at a time:
    drop padding, renormalise, skip rows reading fewer than 2 points."""
    entropies, tops = [], []
    for i in range(idx.shape[0]):
        valid = idx[i] >= 0
        if valid.sum() < 2:
            continue
        row_e, row_t = [], []
        for h in range(weight.shape[2]):
            p = weight[i, valid, h] / weight[i, valid, h].sum()
            terms = [x * np.log(x) for x in p if x > 0]
            row_e.append(-sum(terms) / np.log(valid.sum()))
            row_t.append(p.max())
        entropies.append(row_e)
        tops.append(row_t)
    return np.mean(entropies, axis=0), np.mean(tops, axis=0)


def test_entropy_and_top1_of_a_local_map_with_padding_and_unnormalised_rows():
    idx, w, nodes = random_local(12, 5, 3, seed=2)
    idx[0, 2:] = -1  # a row of two
    idx[1, 1:] = -1  # a row of one: no choice, not counted
    w = w * torch.rand(12, 1, 1) * 3  # rows no longer sum to 1
    w[2, 1:, 0] = 0  # one head of one row puts all on one point
    f = layer_focus(local_layer("l", w, idx, nodes))
    entropy, top1 = by_hand(w.numpy().astype(np.float64), idx.numpy())
    np.testing.assert_allclose(f.entropy.numpy(), entropy, rtol=1e-5)
    np.testing.assert_allclose(f.top1.numpy(), top1, rtol=1e-5)
    assert f.rows == 11
    counts = (idx[2:] >= 0).sum(1).numpy()
    assert f.uniform_top1 == pytest.approx(np.mean(np.r_[1 / 2, 1 / counts]))


def test_uniform_and_one_hot_rows_are_the_ends_of_the_scale():
    idx = torch.arange(6).repeat(6, 1)  # every point reads all six
    uniform = torch.full((6, 6, 1), 1 / 6)
    one_hot = torch.eye(6)[:, :, None]
    f = layer_focus(local_layer("u", torch.cat([uniform, one_hot], 2), idx, torch.arange(6)))
    np.testing.assert_allclose(f.entropy.numpy(), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(f.top1.numpy(), [1 / 6, 1.0], atol=1e-6)


def test_a_transposed_global_map_is_read_by_the_node_that_receives():
    g = torch.Generator().manual_seed(0)
    a = torch.softmax(torch.randn(1, 2, 5, 5, generator=g), dim=-1)
    a = a / a.sum(dim=2, keepdim=True)  # PCT: columns L1-normalised, column j is j's row
    nodes = torch.arange(5)
    f = layer_focus(LayerAttention("pct", AttentionMap("global", a, transposed=True), nodes,
                                   nodes))
    cols = a[0].permute(2, 1, 0).numpy()  # [5 receivers, 5 sources, H]
    entropy, top1 = by_hand(cols.astype(np.float64), np.tile(np.arange(5), (5, 1)))
    np.testing.assert_allclose(f.entropy.numpy(), entropy, rtol=1e-5)
    np.testing.assert_allclose(f.top1.numpy(), top1, rtol=1e-5)


def test_merging_clouds_weighs_each_by_its_rows():
    a = layer_focus(local_layer("l", *random_local(4, 3, 2, seed=0)[1::-1],
                                torch.arange(4)))
    b = layer_focus(local_layer("l", *random_local(12, 3, 2, seed=1)[1::-1],
                                torch.arange(12)))
    merged = merge_focus([[a], [b]])[0]
    np.testing.assert_allclose(merged.entropy.numpy(),
                               (4 * a.entropy.numpy() + 12 * b.entropy.numpy()) / 16, rtol=1e-6)
    assert merged.rows == 16
    table = focus_table([merged], "two clouds")
    assert table.splitlines()[0] == "two clouds" and "0: l" in table


def test_stats_of_a_checkpoint_match_the_rows_of_its_forward(tmp_path, capsys):
    run_dir = untrained_run(tmp_path / "cls", {"name": "point_transformer_cls",
                                               "channels": [16, 32], "blocks": [1, 1], "k": 8,
                                               "head_hidden": [16]},
                            {"name": "synthetic_shapes", "root": str(tmp_path / "data"),
                             "num_points": 128, "per_class": 4, "rotation": "z"})
    out = tmp_path / "viz"
    assert main(["visualize", str(run_dir), "--sample", "test:2", "--stats", "--clouds", "3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "this cloud" in printed and "3 test clouds" in printed and "encoder.1.0" in printed
    with open(out / "test_2_focus.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["scope"].endswith("this cloud")]
    model, run, _ = load_model(run_dir, "cpu")
    layers = point_layers(run_model(model, load_sample(run, "test:2"))["attention"])
    first = layers[0].map
    entropy, top1 = by_hand(first.weight.double().numpy(), first.idx.numpy())
    mine = [r for r in rows if r["layer"] == "0"]
    assert len(mine) == first.heads
    np.testing.assert_allclose([float(r["entropy"]) for r in mine], entropy, atol=2e-6)
    np.testing.assert_allclose([float(r["top1"]) for r in mine], top1, atol=2e-6)
    assert (out / "test_2_focus.png").is_file()
    assert len(focus_stats(layers)) == len({r["layer"] for r in rows})


def test_stats_without_the_runs_data_name_the_way_out(tmp_path, capsys):
    data = tmp_path / "data"
    run_dir = untrained_run(tmp_path / "cls", {"name": "point_transformer_cls",
                                               "channels": [8, 16], "blocks": [1, 1], "k": 8,
                                               "head_hidden": [8]},
                            {"name": "synthetic_shapes", "root": str(data), "num_points": 64,
                             "per_class": 2, "rotation": "z"})
    cloud = tmp_path / "c.xyzn"  # x y z nx ny nz
    np.savetxt(cloud, np.hstack([np.random.default_rng(0).normal(size=(64, 3)),
                                 np.tile([0.0, 0.0, 1.0], (64, 1))]))
    shutil.rmtree(data)  # the run's data is gone; its root is now a file
    data.write_text("not a folder")
    out = tmp_path / "viz"
    assert main(["visualize", str(run_dir), "--file", str(cloud), "--stats", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pass --clouds 0 for this cloud only" in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert main(["visualize", str(run_dir), "--file", str(cloud), "--stats", "--clouds", "0",
                 "--out", str(out)]) == 0
    assert (out / "c_focus.csv").is_file()
