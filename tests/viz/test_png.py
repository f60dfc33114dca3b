"""The PNG is a real picture: its size, more than a few colours, and it follows the query."""

from __future__ import annotations

import numpy as np
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
