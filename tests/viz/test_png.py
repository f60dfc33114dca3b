"""The PNG is a real picture: its size, more than a few colours, and it follows the query."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vizhelpers import local_layer, random_local

from pcattn.viz import attention_map, save_png


def read_png(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def sphere(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 3, generator=g)
    return p / p.norm(dim=1, keepdim=True)


def test_png_has_its_size_many_colours_and_changes_with_the_query(tmp_path):
    pos = sphere(200)
    d = torch.cdist(pos, pos)
    idx = d.topk(16, largest=False).indices  # [N, 16] real neighbourhoods
    w = torch.softmax(-d.gather(1, idx)[..., None] * 20, dim=1).expand(-1, -1, 2)
    layers = [local_layer("stage0.block0", w, idx, torch.arange(200))]
    images = []
    for q in (3, 150):
        values = attention_map(layers, pos, torch.tensor([q]))
        path = save_png(tmp_path / f"q{q}.png", pos, values, queries=torch.tensor([q]),
                        title=f"test, query {q}")
        images.append(read_png(path))
    a, b = images
    assert a.shape == (460, 1350, 3)  # three 4-inch panels + titled colour bar, 100 dpi
    colours = {tuple(c) for c in a.reshape(-1, 3)[::7]}
    assert len(colours) > 50
    yellowish = (a[..., 0] > 200) & (a[..., 1] > 200) & (a[..., 2] < 80)  # top of viridis
    assert yellowish.sum() > 20
    assert (np.abs(a.astype(int) - b.astype(int)).sum(-1) > 60).sum() > 200


def test_png_of_a_segmentation_model_adds_parts_panels(tmp_path):
    pos = sphere(100)
    idx, w, nodes = random_local(100, 8, 1)
    values = attention_map([local_layer("l", w, idx, nodes)], pos, torch.tensor([0]))
    parts = (pos[:, 2] > 0).long(), (pos[:, 2] > 0.1).long()
    path = save_png(tmp_path / "seg.png", pos, values, parts=parts,
                    active=torch.arange(100) % 2 == 0)
    assert read_png(path).shape == (460, 2150, 3)


def test_a_grid_shares_one_scale_and_marks_clipping_only_where_a_cell_is_clipped():
    from pcattn.viz import make_view
    from pcattn.viz.png import shared_scale

    idx = torch.arange(4).repeat(4, 1)  # every point reads all four
    sharp = torch.tensor([0.05, 0.05, 0.1, 0.8])[None, :, None].expand(4, 4, 1)  # x3.2 .. x0.2
    mild = torch.tensor([0.2, 0.25, 0.25, 0.3])[None, :, None].expand(4, 4, 1)  # x0.8 .. x1.2
    pos = sphere(4)
    views = [make_view([local_layer("l", w, idx, torch.arange(4))], pos, "map", 0, None, "0")
             for w in (sharp, mild)]
    scale = shared_scale(views)
    assert (scale.lo, scale.hi) == pytest.approx((-np.log2(3.2), np.log2(3.2)))
    assert scale.clipped  # x0.2 lies below x1/3.2
    alone = shared_scale(views[1:])
    assert not alone.clipped and alone.hi == pytest.approx(np.log2(1.2))
