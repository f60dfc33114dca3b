import json

import pytest
import torch

from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.folder import FolderDataset

from datafixtures import cloud_rows, write_off, write_rows


@pytest.fixture
def clouds(tmp_path):
    """root/<class>/: 'bolt' 5 txt clouds with normals, 'nut' 4 (3 txt + 1 OFF mesh)."""
    root = tmp_path / "parts"
    for k in range(5):
        write_rows(root / "bolt" / f"b{k}.txt", cloud_rows(300, k))
    for k in range(3):
        write_rows(root / "nut" / f"n{k}.txt", cloud_rows(80, 10 + k))
    write_off(root / "nut" / "n3.off")
    return root


def test_seeded_split_is_stratified_disjoint_and_repeatable(clouds, tmp_path):
    kw = dict(num_points=64, cache_dir=tmp_path / "c", test_ratio=0.4)
    train, test = FolderDataset(clouds, "train", **kw), FolderDataset(clouds, "test", **kw)
    assert train.classes == ["bolt", "nut"] and train.num_classes == 2
    assert train.labels.bincount().tolist() == [3, 2] and test.labels.bincount().tolist() == [2, 2]
    assert not set(train.names) & set(test.names)
    assert sorted(train.names + test.names) == sorted(
        str(p.relative_to(clouds)) for p in clouds.rglob("*") if p.is_file())
    again = FolderDataset(clouds, "test", num_points=64, test_ratio=0.4, cache_dir=tmp_path / "d")
    assert again.names == test.names
    other = FolderDataset(clouds, "test", num_points=64, test_ratio=0.4, seed=7,
                          cache_dir=tmp_path / "d")
    assert other.names != test.names


def _all_in_train(root, test=("bolt/b4.txt",)):
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    (root / "split.json").write_text(json.dumps(
        {"train": [f for f in files if f not in test], "test": list(test)}))


def test_clouds_are_cut_by_fps_and_small_ones_kept_whole(clouds, tmp_path):
    _all_in_train(clouds)
    ds = FolderDataset(clouds, "train", num_points=64, cache_dir=tmp_path)
    assert [ds[i].num_nodes for i in range(len(ds))] == [64] * 8
    d = ds[0]
    assert d.x.shape == (64, 3) and d.y.shape == (1,)
    assert d.pos.norm(dim=1).max().item() == pytest.approx(1.0, abs=1e-5)
    big = FolderDataset(clouds, "train", num_points=200, cache_dir=tmp_path)
    sizes = dict(zip(big.names, (big[i].num_nodes for i in range(len(big)))))
    assert sizes == {"bolt/b0.txt": 200, "bolt/b1.txt": 200, "bolt/b2.txt": 200,
                     "bolt/b3.txt": 200, "nut/n0.txt": 80, "nut/n1.txt": 80, "nut/n2.txt": 80,
                     "nut/n3.off": 200}
    raw = FolderDataset(clouds, "train", num_points=300, normalize=False, cache_dir=tmp_path)
    from pcattn.ops import farthest_point_sample

    rows = torch.from_numpy(cloud_rows(300, 0)[:, :3]).float()
    assert torch.allclose(raw[0].pos, rows, atol=1e-5)  # b0 whole, as read
    idx = farthest_point_sample(rows, num=64)
    fps = FolderDataset(clouds, "train", num_points=64, normalize=False, cache_dir=tmp_path)
    assert torch.allclose(fps[0].pos, rows[idx], atol=1e-5)


def test_split_file_and_split_folders(clouds, tmp_path):
    (clouds / "split.json").write_text(json.dumps({"train": ["bolt/b0.txt", "nut/n3.off"],
                                                  "test": ["nut/n1.txt"]}))
    tr = FolderDataset(clouds, "train", num_points=32, cache_dir=tmp_path)
    assert tr.names == ["bolt/b0.txt", "nut/n3.off"] and tr.labels.tolist() == [0, 1]
    assert "split file" in tr.split_rule
    (clouds / "split.json").write_text(json.dumps({"train": ["bolt/b9.txt"], "test": []}))
    with pytest.raises(DatasetNotFoundError, match=r"split.json, train\[0\] names 'bolt/b9.txt'"):
        FolderDataset(clouds, "train", num_points=32, cache_dir=tmp_path)
    (clouds / "split.json").unlink()
    sub = tmp_path / "sub"
    write_rows(sub / "a" / "train" / "1.txt", cloud_rows(40, 1))
    write_rows(sub / "a" / "test" / "2.txt", cloud_rows(40, 2))
    write_rows(sub / "b" / "train" / "3.txt", cloud_rows(40, 3))
    te = FolderDataset(sub, "test", num_points=16, cache_dir=tmp_path)
    assert te.names == ["a/test/2.txt"] and te.classes == ["a", "b"]


def test_a_bad_file_is_named_and_skipped_only_when_asked(clouds, tmp_path):
    bad = clouds / "bolt" / "b2.txt"
    lines = bad.read_text().splitlines()
    lines[7] = "1,2"
    bad.write_text("\n".join(lines) + "\n")
    _all_in_train(clouds)
    kw = dict(num_points=32, cache_dir=tmp_path)
    with pytest.raises(DataFormatError) as err:
        FolderDataset(clouds, "train", **kw)
    assert f"{bad}, line 8" in str(err.value) and "skip_bad" in str(err.value)
    with pytest.warns(UserWarning, match=r"1 unreadable file\(s\) skipped.*b2.txt"):
        ds = FolderDataset(clouds, "train", skip_bad=True, **kw)
    assert len(ds) == 7
    assert "bolt/b2.txt" not in ds.names
    assert [p for p, _ in ds.skipped] == [str(bad)]


def test_clouds_without_normals_need_use_normals_false(tmp_path):
    root = tmp_path / "r"
    for c in ("a", "b"):
        for k in range(2):
            write_rows(root / c / f"{k}.xyz", cloud_rows(50, k)[:, :3], sep=" ")
    with pytest.raises(DataFormatError, match="no normals.*use_normals: false"):
        FolderDataset(root, "train", num_points=16, test_ratio=0.5, cache_dir=tmp_path)
    ds = FolderDataset(root, "train", num_points=16, test_ratio=0.5, use_normals=False,
                       cache_dir=tmp_path)
    assert ds[0].x is None and len(ds) == 2


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        FolderDataset(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no class folders with cloud files"):
        FolderDataset(tmp_path / "empty")


def _two_class_root(tmp_path):
    root = tmp_path / "r"
    for c in ("a", "b"):
        for k in range(2):
            write_rows(root / c / f"{k}.txt", cloud_rows(50, k))
    return root


def test_a_truncated_ply_stops_the_build(tmp_path):
    import open3d as o3d

    root = _two_class_root(tmp_path)
    rows = cloud_rows(50, 3)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rows[:, :3]))
    pcd.normals = o3d.utility.Vector3dVector(rows[:, 3:6])
    bad = root / "a" / "cut.ply"
    o3d.io.write_point_cloud(str(bad), pcd, write_ascii=False)
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match=r"cut\.ply: element 'vertex' ends at row 4\d of 50"):
        FolderDataset(root, "train", num_points=16, test_ratio=0.3, cache_dir=tmp_path)


def test_feature_columns_are_refused_by_the_folder_dataset(tmp_path):
    root = _two_class_root(tmp_path)
    write_rows(root / "b" / "five.txt", cloud_rows(50, 5)[:, :5])
    with pytest.raises(DataFormatError, match=r"five\.txt: rows of 5 columns; a folder dataset"):
        FolderDataset(root, "train", num_points=16, test_ratio=0.3, cache_dir=tmp_path)
