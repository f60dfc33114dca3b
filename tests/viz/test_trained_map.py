"""On a trained classifier of the default's shape (Point Transformer, k = 16) the relative
scale tells the 16 neighbours of each query apart, and the focus of its layers is measured
below uniform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pcattn.cli import main
from pcattn.engine.config import config_from_dict
from pcattn.viz import colorize, make_view, point_layers
from pcattn.viz.focus import focus_stats
from pcattn.viz.run import load_model, load_sample, run_model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from pcattn.engine.loop import train

    root = tmp_path_factory.mktemp("trained")
    run = config_from_dict({
        "model": {"name": "point_transformer_cls", "channels": [16, 32], "blocks": [1, 1],
                  "k": 16, "head_hidden": [16]},
        "data": {"name": "synthetic_shapes", "root": str(root / "data"), "num_points": 128,
                 "per_class": 8, "rotation": "z"},
        "train": {"epochs": 12, "batch_size": 8, "lr": 0.005, "out_dir": str(root / "runs"),
                  "run_name": "k16", "threads": 1}})
    return Path(train(run, progress=False)["run_dir"])


def visible_levels(rgb: np.ndarray, step: float = 0.1) -> int:
    """How many of the colours differ from every other one counted by more than ``step`` in
    some channel (a step one sees, not a rounding difference)."""
    kept = []
    for c in rgb:
        if all(np.abs(c - k).max() > step for k in kept):
            kept.append(c)
    return len(kept)


def test_each_querys_16_neighbours_get_more_than_two_colour_levels(trained_run, capsys):
    model, run, _ = load_model(trained_run, "cpu")
    data = load_sample(run, "test:0")
    result = run_model(model, data)
    layers, pos = point_layers(result["attention"]), result["pos"]
    view = make_view(layers, pos, "map", 0, None, "fps:4")  # what the map PNG draws
    rgb = colorize(view.values, view.active, view.queries, view.scale())
    idx = layers[0].map.idx  # [N, 16]: layer 0's queries are the input points
    for q in view.queries.tolist():
        neighbours = [j for j in idx[q].tolist() if j != q]
        assert len(idx[q]) == 16 and visible_levels(rgb[neighbours]) > 2, q
    absolute = make_view(layers, pos, "map", 0, None, "fps:4", relative=False)
    assert torch.equal(absolute.active, view.active)
    out = trained_run / "viz"
    assert main(["visualize", str(trained_run), "--sample", "test:0", "--out", str(out)]) == 0
    assert (out / "test_0_map_layer0.png").is_file()


def test_trained_layers_focus_more_than_uniform(trained_run):
    model, run, _ = load_model(trained_run, "cpu")
    layers = point_layers(run_model(model, load_sample(run, "test:0"))["attention"])
    for f in focus_stats(layers):
        assert float(f.entropy.min()) < 1.0  # some head is below uniform
        assert float(f.top1.max()) > f.uniform_top1
