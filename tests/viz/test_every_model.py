"""Every registered model's attention goes through pcattn.viz: map, received and rollout
(PointNet, the no-attention reference, returns none: ``test_visualize_cli`` checks its
message)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.models import create_model, list_models
from pcattn.models.registry import model_config_class
from pcattn.viz import focus_stats, make_view, point_layers, rollout_matrix
from pcattn.viz.figures import grid_cells
from pcattn.viz.html import page_data
from helpers import WITHOUT_ATTENTION


@pytest.mark.parametrize("name", [n for n in list_models() if n not in WITHOUT_ATTENTION])
def test_every_model_is_drawn(name):
    fields = {f.name for f in dataclasses.fields(model_config_class(name))}
    overrides = {"num_classes": 4, **({"num_categories": 0} if "num_categories" in fields else {})}
    model = create_model(name, **overrides).eval()
    pos = torch.rand(64, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = model.forward_features(Batch.from_data_list([Data(pos=pos)]),
                                       return_attention=True)
    layers = point_layers(feats["attention"])
    assert layers, f"{name} returned no maps that weigh points"
    for mode in ("map", "received", "rollout"):
        view = make_view(layers, pos, mode)
        assert view.values.shape == (64,) and view.values.max() > 0, (name, mode)
    sums = torch.sparse.sum(rollout_matrix(layers, 64), 1).to_dense()
    assert torch.allclose(sums, torch.ones(64), atol=1e-4)
    assert len(page_data(pos, layers)["layers"]) == len(layers)
    focus = focus_stats(layers)
    for f in focus:  # a layer whose rows all read one point has no focus to measure
        assert f.rows == 0 or (0 <= float(f.entropy.min()) and float(f.entropy.max()) <= 1 + 1e-5
                               and f.uniform_top1 <= float(f.top1.max()) + 1e-6), (name, f)
    cells, rows, _ = grid_cells("heads", pos, layers, focus)
    assert len(cells) == len(rows) == len(layers)
