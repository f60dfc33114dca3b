import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.modelnet import MODELNET10_CLASSES, MODELNET40_CLASSES, ModelNet

from datafixtures import REALDATA, cloud_rows, needs_realdata

L40 = MODELNET40_CLASSES.index


def _check_items(ds, n, normals=True):
    for i in range(len(ds)):
        d = ds[i]
        assert d.pos.shape == (n, 3) and d.pos.dtype == torch.float32
        assert d.y.shape == (1,) and d.y.dtype == torch.long
        assert d.pos.norm(dim=1).max().item() == pytest.approx(1.0, abs=1e-5)
        assert d.pos.mean(0).abs().max() < 1e-4
        if normals:
            assert d.x.shape == (n, 3)
        else:
            assert d.x is None


def test_off_layout_counts_labels_and_normals(modelnet_off, tmp_path):
    train = ModelNet(modelnet_off, "train", num_points=128, cache_dir=tmp_path / "c")
    test = ModelNet(modelnet_off, "test", num_points=128, cache_dir=tmp_path / "c")
    assert train.layout.kind == "modelnet_off" and train.num_classes == 40
    assert train.labels.tolist() == [L40("chair")] * 2 + [L40("sofa")]
    assert test.labels.tolist() == [L40("chair"), L40("desk"), L40("sofa")]
    _check_items(train, 128)
    # cube normals are axis-aligned unit vectors
    x = train[0].x
    assert torch.allclose(x.abs().max(1).values, torch.ones(128))


def test_modelnet10_from_a_modelnet40_tree_keeps_its_ten_classes(modelnet_off, tmp_path):
    test = ModelNet(modelnet_off, "test", variant=10, num_points=32, cache_dir=tmp_path)
    assert test.num_classes == 10
    names = [test.classes[i] for i in test.labels.tolist()]
    assert names == ["chair", "desk", "sofa"]
    assert test.classes == list(MODELNET10_CLASSES)


def test_normal_resampled_layout_takes_the_first_rows(modelnet_normal, tmp_path):
    train = ModelNet(modelnet_normal, "train", num_points=50, cache_dir=tmp_path)
    assert train.layout.kind == "modelnet_normal"
    assert train.labels.tolist() == [L40("airplane")] * 2 + [L40("night_stand"), L40("sofa")]
    _check_items(train, 50)
    rows = cloud_rows(200, 0)[:50]
    xyz = rows[:, :3] - rows[:, :3].mean(0)
    xyz /= np.linalg.norm(xyz, axis=1).max()
    np.testing.assert_allclose(train[0].pos.numpy(), xyz, atol=1e-5)
    np.testing.assert_allclose(train[0].x.numpy(), rows[:, 3:6], atol=1e-5)
    fps = ModelNet(modelnet_normal, "train", num_points=50, sampling="fps", cache_dir=tmp_path)
    assert not torch.equal(fps[0].pos, train[0].pos)
    raw = ModelNet(modelnet_normal, "test", num_points=200, normalize=False,
                   use_normals=False, cache_dir=tmp_path)
    np.testing.assert_allclose(raw[0].pos.numpy(), cloud_rows(200, 4)[:, :3], atol=1e-5)
    assert raw[0].x is None


def test_h5_layout_and_modelnet10_relabelling(modelnet_h5, tmp_path):
    train = ModelNet(modelnet_h5, "train", num_points=64, cache_dir=tmp_path)
    assert train.layout.kind == "modelnet_h5"
    assert train.labels.tolist() == [0, 8, 8, 30, 39]
    with h5py.File(modelnet_h5 / "ply_data_train1.h5") as f:
        raw = f["data"][1]
    xyz = raw - raw.mean(0)
    np.testing.assert_allclose(train[4].pos.numpy(), xyz / np.linalg.norm(xyz, axis=1).max(),
                               atol=1e-5)
    ten = ModelNet(modelnet_h5, "train", variant=10, num_points=64, cache_dir=tmp_path)
    assert [ten.classes[i] for i in ten.labels.tolist()] == ["chair", "chair", "sofa"]
    test = ModelNet(modelnet_h5, "test", num_points=32, cache_dir=tmp_path)
    assert len(test) == 2 and test[0].pos.shape == (32, 3)


def test_items_batch_with_pyg_dataloader(modelnet_normal, tmp_path):
    ds = ModelNet(modelnet_normal, "train", num_points=40, cache_dir=tmp_path)
    batch = next(iter(DataLoader(ds, batch_size=3, shuffle=False)))
    assert batch.pos.shape == (120, 3) and batch.x.shape == (120, 3)
    assert batch.y.tolist() == ds.labels[:3].tolist()
    assert batch.batch.bincount().tolist() == [40, 40, 40]


def test_missing_root_lists_the_layouts_and_where_to_put_them(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        ModelNet(tmp_path / "data" / "modelnet40")
    msg = str(err.value)
    assert "does not exist" in msg
    for needle in ("modelnet_off", "modelnet_normal", "modelnet_h5", "modelnet40_shape_names.txt",
                   "ModelNet40.zip", "<class>/train/<class>_0001.off", "unzip it into"):
        assert needle in msg
    assert "shapenetpart" not in msg


def test_truncated_off_names_the_file(modelnet_off, tmp_path):
    bad = modelnet_off / "chair/train/chair_0002.off"
    bad.write_text("\n".join(bad.read_text().splitlines()[:6]) + "\n")
    with pytest.raises(DataFormatError) as err:
        ModelNet(modelnet_off, "train", num_points=16, cache_dir=tmp_path)
    assert str(bad) in str(err.value) and "promises 8 vertices" in str(err.value)
    assert "skip_bad" in str(err.value)


def test_txt_row_with_five_columns_names_file_and_line(modelnet_normal, tmp_path):
    f = modelnet_normal / "sofa/sofa_0003.txt"
    lines = f.read_text().splitlines()
    lines[41] = ",".join(lines[41].split(",")[:5])
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"sofa_0003\.txt, line 42: expected 6 columns"):
        ModelNet(modelnet_normal, "train", num_points=16, cache_dir=tmp_path)


def test_h5_without_data_names_the_key(modelnet_h5, tmp_path):
    with h5py.File(modelnet_h5 / "ply_data_test0.h5", "a") as f:
        del f["data"]
    with pytest.raises(DataFormatError, match=r"ply_data_test0\.h5: no 'data' dataset"):
        ModelNet(modelnet_h5, "test", num_points=16, cache_dir=tmp_path)


def test_split_list_naming_a_missing_file(modelnet_normal, tmp_path):
    os.remove(modelnet_normal / "airplane/airplane_0627.txt")
    with pytest.raises(DatasetNotFoundError) as err:
        ModelNet(modelnet_normal, "test", num_points=16, cache_dir=tmp_path)
    assert "modelnet40_test.txt, line 1 names 'airplane_0627'" in str(err.value)
    (modelnet_normal / "modelnet40_test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="modelnet40_test.txt is missing"):
        ModelNet(modelnet_normal, "test", num_points=16, cache_dir=tmp_path)


def test_too_many_points_asked_of_a_point_layout(modelnet_normal, tmp_path):
    with pytest.raises(DataFormatError, match="has 200 points, fewer than num_points=500"):
        ModelNet(modelnet_normal, "test", num_points=500, cache_dir=tmp_path)


def test_cache_next_to_the_data_reused_and_invalidated(modelnet_normal, monkeypatch):
    a = ModelNet(modelnet_normal, "train", num_points=20)
    assert a.cache_path.parent == modelnet_normal / "pcattn_cache" and a.cache_path.exists()
    import pcattn.data.modelnet as m

    def no_reading(*args, **kwargs):
        raise AssertionError("read the files although the cache is valid")

    monkeypatch.setattr(m, "read_rows", no_reading)
    b = ModelNet(modelnet_normal, "train", num_points=20)
    assert b.cache_path == a.cache_path and torch.equal(b[1].pos, a[1].pos)
    # a changed option, or a changed file, never reuses the old cache
    for kwargs in (dict(num_points=21), dict(num_points=20, normalize=False),
                   dict(num_points=20, sampling="random")):
        with pytest.raises(AssertionError, match="read the files"):
            ModelNet(modelnet_normal, "train", **kwargs)
    f = modelnet_normal / "sofa/sofa_0003.txt"
    lines = f.read_text().splitlines()
    lines[0] = "0.5,0.5,0.5,0,0,1"  # an edited shape
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(AssertionError, match="read the files"):
        ModelNet(modelnet_normal, "train", num_points=20)


def test_ctrl_c_while_saving_the_cache_then_a_clean_rebuild(modelnet_off, monkeypatch):
    real_replace = os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ModelNet(modelnet_off, "test", num_points=16)
    cache = modelnet_off / "pcattn_cache"
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(os, "replace", real_replace)
    ds = ModelNet(modelnet_off, "test", num_points=16)
    assert len(ds) == 3 and len(list(cache.iterdir())) == 1


def test_sampling_is_seeded_per_file(modelnet_off, tmp_path):
    a = ModelNet(modelnet_off, "train", num_points=64, seed=0, cache_dir=tmp_path)
    b = ModelNet(modelnet_off, "train", num_points=64, seed=1, cache_dir=tmp_path)
    assert a.cache_path != b.cache_path
    assert not torch.equal(a[0].pos, b[0].pos)
    assert not torch.equal(a[0].pos, a[1].pos)  # identical meshes, different files


@needs_realdata
def test_real_modelnet_off_meshes(tmp_path):
    root = REALDATA / "ModelNet_off"
    ten = ModelNet(root, "train", variant=10, num_points=256, cache_dir=tmp_path)
    assert ten.source.name == "ModelNet10"
    assert [ten.classes[i] for i in ten.labels] == ["sofa", "table"]
    forty = ModelNet(root, "test", variant=40, num_points=256, cache_dir=tmp_path)
    assert forty.source.name == "ModelNet40"
    assert forty.labels.tolist() == [L40("desk"), L40("monitor")]
    _check_items(ten, 256)
    _check_items(forty, 256)
    for d in (ten[0], forty[1]):
        assert torch.allclose(d.x.norm(dim=1), torch.ones(256), atol=1e-4)


@needs_realdata
def test_real_normal_resampled_shapes(tmp_path):
    root = REALDATA / "modelnet40_normal_resampled"
    train = ModelNet(root, "train", num_points=1024, cache_dir=tmp_path)
    test = ModelNet(root, "test", num_points=1024, cache_dir=tmp_path)
    assert (len(train), len(test)) == (6, 4)
    assert [train.classes[i] for i in train.labels] == [
        "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle"]
    assert test.labels.tolist() == [L40("car"), L40("chair"), L40("cup"), L40("desk")]
    _check_items(train, 1024)
    rows = np.loadtxt(root / "bed/bed_0026.txt", delimiter=",")[:1024]
    np.testing.assert_allclose(train[2].x.numpy(), rows[:, 3:], atol=1e-6)
    assert torch.allclose(train[2].x.norm(dim=1), torch.ones(1024), atol=1e-2)
    ten = ModelNet(root, "test", variant=10, num_points=512, cache_dir=tmp_path)
    assert [ten.classes[i] for i in ten.labels] == ["chair", "desk"]
    assert not any(p.name == "pcattn_cache" for p in root.iterdir())


def test_a_cache_that_cannot_be_written_says_what_to_set(modelnet_normal, tmp_path):
    """Root writes into read-only folders, so the cache is made unwritable another way: a
    regular file where the cache folder goes, and a cache_dir under a regular file."""
    shutil.rmtree(modelnet_normal / "pcattn_cache", ignore_errors=True)
    (modelnet_normal / "pcattn_cache").write_text("not a folder")
    try:
        with pytest.raises(PermissionError, match="data.cache_dir"):
            ModelNet(modelnet_normal, "train", num_points=16)
    finally:
        (modelnet_normal / "pcattn_cache").unlink()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="data.cache_dir"):
        ModelNet(modelnet_normal, "train", num_points=16, cache_dir=blocker / "cache")
