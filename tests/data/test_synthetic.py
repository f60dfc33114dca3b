"""The built-in synthetic data: classes, parts, determinism, caching."""

from __future__ import annotations

import torch
from torch_geometric.loader import DataLoader

from pcattn.data import PART_CATEGORIES, SHAPE_CLASSES, SyntheticParts, SyntheticShapes
from pcattn.data.synthetic import part_ids


def test_shapes_items_and_labels(tmp_path):
    ds = SyntheticShapes(tmp_path, "train", num_points=64, per_class=2)
    assert len(SHAPE_CLASSES) >= 10 and ds.num_classes == len(SHAPE_CLASSES)
    assert len(ds) == 2 * len(SHAPE_CLASSES)
    item = ds[0]
    assert item.pos.shape == (64, 3) and item.x.shape == (64, 3) and item.y.shape == (1,)
    assert sorted({int(d.y) for d in ds}) == list(range(len(SHAPE_CLASSES)))
    # centred, inside the unit sphere, unit normals
    assert item.pos.mean(0).abs().max() < 1e-5
    assert item.pos.norm(dim=1).max() <= 1 + 1e-5
    torch.testing.assert_close(item.x.norm(dim=1), torch.ones(64), atol=1e-4, rtol=0)


def test_shapes_are_deterministic_by_seed_and_split(tmp_path):
    a = SyntheticShapes(tmp_path / "a", "train", num_points=32, per_class=1, seed=3)
    b = SyntheticShapes(tmp_path / "b", "train", num_points=32, per_class=1, seed=3)
    c = SyntheticShapes(tmp_path / "a", "train", num_points=32, per_class=1, seed=4)
    t = SyntheticShapes(tmp_path / "a", "test", num_points=32, per_class=1, seed=3)
    assert torch.equal(a[5].pos, b[5].pos)
    assert not torch.equal(a[5].pos, c[5].pos)
    assert not torch.equal(a[5].pos, t[5].pos)


def test_cache_is_reused_and_keyed_by_options(tmp_path, monkeypatch):
    SyntheticShapes(tmp_path, "train", num_points=32, per_class=1)
    files = sorted((tmp_path / "synthetic").glob("*.pt"))
    assert len(files) == 1
    import pcattn.data.synthetic as syn

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt although the cache was there")

    monkeypatch.setattr(syn, "_primitive", boom)
    SyntheticShapes(tmp_path, "train", num_points=32, per_class=1)  # from the cache
    monkeypatch.undo()
    SyntheticShapes(tmp_path, "train", num_points=32, per_class=1, noise=0.02)  # new key
    assert len(sorted((tmp_path / "synthetic").glob("*.pt"))) == 2
    assert not list((tmp_path / "synthetic").glob("*.tmp"))


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    import os

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    try:
        SyntheticShapes(tmp_path, "train", num_points=16, per_class=1)
    except KeyboardInterrupt:
        pass
    assert not list((tmp_path / "synthetic").glob("*"))


def test_parts_have_disjoint_ids_per_category(tmp_path):
    ds = SyntheticParts(tmp_path, "train", num_points=256, per_class=2)
    ids = part_ids()
    assert ds.num_classes == sum(len(p) for p in PART_CATEGORIES.values())
    flat = [i for cat in ids.values() for i in cat]
    assert len(flat) == len(set(flat))
    for item in ds:
        cat = list(PART_CATEGORIES)[int(item.category)]
        assert item.y.shape == (256,)
        assert set(item.y.unique().tolist()) == set(ids[cat]), "every part is sampled"


def test_parts_mask_by_hand(tmp_path):
    ds = SyntheticParts(tmp_path, "test", num_points=32, per_class=1)
    # arrow: shaft 0, head 1; table: top 2, legs 3; lamp: 4, 5, 6; mushroom: 7, 8
    rows = [[0, 1], [2, 3], [4, 5, 6], [7, 8]]
    assert ds.num_categories == 4 and ds.part_mask.shape == (4, 9)
    assert [r.nonzero().flatten().tolist() for r in ds.part_mask] == rows
    for i in range(len(ds)):
        d = ds[i]
        assert ds.part_mask[d.category.item(), d.y].all()


def test_works_with_pyg_dataloader(tmp_path):
    ds = SyntheticParts(tmp_path, "test", num_points=32, per_class=1)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.pos.shape == (96, 3) and batch.y.shape == (96,)
    assert batch.category.shape == (3,) and batch.batch.max() == 2
