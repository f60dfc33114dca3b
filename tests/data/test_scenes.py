"""The synthetic rooms: deterministic, every point where its label says, objects apart,
crops that are balls, a compact cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcattn.data.registry import DataConfig, build_dataset
from pcattn.data.scenes import HEIGHT, SCENE_CLASSES, SyntheticScenes, crop, make_scene


@pytest.fixture(scope="module")
def scene():
    return make_scene(20_000, np.random.default_rng(3))


def test_a_seed_makes_the_same_room_and_another_seed_another():
    a, b = make_scene(3000, np.random.default_rng(1)), make_scene(3000, np.random.default_rng(1))
    assert torch.equal(a.pos, b.pos) and torch.equal(a.y, b.y)
    assert not torch.equal(a.pos, make_scene(3000, np.random.default_rng(2)).pos)


def test_every_point_lies_on_the_surface_its_label_names(scene):
    pos, y = scene.pos, scene.y
    assert pos.shape == (20_000, 3) and int(y.max()) < len(SCENE_CLASSES)
    assert {0, 1} <= set(y.tolist()) and int((y >= 2).sum()) > 0
    assert float(pos[y == 0, 2].abs().max()) < 0.03  # the floor, 5 mm jitter
    lo, hi = pos[y == 0].amin(0), pos[y == 0].amax(0)
    wall = pos[y == 1]
    to_wall = torch.stack([wall[:, 0] - lo[0], hi[0] - wall[:, 0], wall[:, 1] - lo[1],
                           hi[1] - wall[:, 1]], 1).abs().amin(1)
    assert float(to_wall.max()) < 0.05 and float(wall[:, 2].max()) < HEIGHT + 0.03
    things = pos[y >= 2]
    assert bool(((things[:, :2] > lo[:2]) & (things[:, :2] < hi[:2])).all())
    assert float(things[:, 2].min()) > -0.03  # standing on the floor
    normals = scene.x
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(20_000), atol=1e-4, rtol=0)
    inward = (normals[y == 1] * (pos[y == 1].mean(0) - wall)).sum(1)
    assert bool((inward > 0).all())


def test_objects_never_touch(scene):
    ids = [i for i in scene.instance.unique().tolist() if i >= 2]
    assert len(ids) >= 3
    parts = [scene.pos[scene.instance == i, :2][::4] for i in ids]  # footprints
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            assert float(torch.cdist(parts[i], parts[j]).min()) > 0.05, (ids[i], ids[j])
        assert scene.y[scene.instance == ids[i]].unique().numel() == 1  # one class an object


def test_a_crop_is_the_ball_of_nearest_points(scene):
    g = torch.Generator().manual_seed(5)
    centre = scene.pos[torch.randint(20_000, (1,), generator=torch.Generator().manual_seed(5))]
    out = crop(scene, 4000, g)
    assert out.pos.shape == (4000, 3) and out.y.shape == out.instance.shape == (4000,)
    kept = (out.pos - centre).norm(dim=1).max()
    dist = (scene.pos - centre).norm(dim=1)
    assert int((dist <= kept).sum()) == 4000  # nothing outside the ball was kept
    assert crop(scene, 30_000) is scene


def test_the_dataset_caches_compactly_and_crops_only_when_asked(tmp_path):
    ds = SyntheticScenes(tmp_path, "train", num_scenes=2, scene_points=5000, crop_points=1000)
    assert len(ds) == 2 and ds.num_categories == 0 and ds.num_classes == 12
    item = ds[0]
    assert item.pos.shape == (1000, 3) and item.x.shape == (1000, 3)
    assert "instance" not in item and "category" not in item
    assert ds.path.stat().st_size < 2 * 5000 * 18 + 20_000  # 18 bytes a point, 2 rooms
    whole = SyntheticScenes(tmp_path, "train", num_scenes=2, scene_points=5000)
    assert whole[1].pos.shape == (5000, 3)
    spread = whole[1].pos.amax(0) + whole[1].pos.amin(0)
    assert float(spread[:2].abs().max()) < 1e-4  # centred in x and y
    assert float(whole[1].pos[:, 2].min()) < 0  # z keeps the floor at 0 (jitter below)
    test = SyntheticScenes(tmp_path, "test", num_scenes=2, scene_points=5000)
    assert not torch.equal(test[0].pos, whole[0].pos)
    scale = SyntheticScenes(tmp_path, "scale", num_scenes=1, scene_points=5000)
    assert float(scale[0].pos[:, 0].max()) > 6.5  # rooms of 14-20 m


def test_the_registry_builds_crops_for_train_and_whole_rooms_for_test(tmp_path):
    cfg = DataConfig(name="synthetic_scenes", root=str(tmp_path), scenes=4, scene_points=3000,
                     num_points=500)
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert len(train) == 4 and train[0].pos.shape[0] == 500
    assert len(test) == 2 and test[0].pos.shape[0] == 3000
    with pytest.raises(ValueError, match="data.val_fraction: synthetic_scenes"):
        DataConfig(name="synthetic_scenes", val_fraction=0.1)
    with pytest.raises(ValueError, match="data.scenes and data.scene_points"):
        DataConfig(name="synthetic_scenes", scenes=0)


def test_a_grid_sample_keeps_one_random_point_per_cell(scene, tmp_path):
    from pcattn.data.scenes import grid_sample

    out = grid_sample(scene, 0.1, torch.Generator().manual_seed(0))
    cells = torch.floor((scene.pos - scene.pos.amin(0)) / 0.1).long()
    kept = torch.floor((out.pos - scene.pos.amin(0)) / 0.1).long()
    assert out.pos.shape[0] == cells.unique(dim=0).shape[0] == kept.unique(dim=0).shape[0]
    assert out.y.shape == (out.pos.shape[0],)
    again = grid_sample(scene, 0.1, torch.Generator().manual_seed(1))
    assert not torch.equal(again.pos, out.pos)  # another random point of some cells
    cfg = DataConfig(name="synthetic_scenes", root=str(tmp_path), scenes=1, scene_points=3000,
                     num_points=100_000, grid_sample=0.5)
    sampled, whole = build_dataset(cfg, "train")[0], build_dataset(cfg, "test")[0]
    assert sampled.pos.shape[0] < 1500 and whole.pos.shape[0] == 3000
    with pytest.raises(ValueError, match="data.grid_sample must be >= 0"):
        DataConfig(grid_sample=-1.0)
