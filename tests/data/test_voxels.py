"""Occupancy grids: surface sampling against closed forms, binvox against a writer written
here (y fastest, then z, then x), the packed npz layout, and the shared ModelNet10 grids."""

import numpy as np
import pytest
import torch

from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.folder import FolderDataset
from pcattn.data.info import describe, format_description
from pcattn.data.io import read_cloud
from pcattn.data.layouts import kinds_in
from pcattn.data.modelnet import ModelNet
from pcattn.data.registry import DataConfig, build_dataset
from pcattn.data.voxels import (exposed_faces, read_binvox, read_occupancy_npz,
                                save_occupancy_npz, surface_points, voxel_cloud)

from datafixtures import REALDATA, needs_realdata

REAL_COUNTS = {"bathtub": 106, "bed": 515, "chair": 889, "desk": 200, "dresser": 200,
               "monitor": 465, "night_stand": 200, "sofa": 680, "table": 392, "toilet": 344}


def write_binvox(path, grid, translate=(0.0, 0.0, 0.0), scale=1.0):
    """A binvox writer independent of the reader: walks x, then z, then y (fastest) and
    writes (value, count) runs of at most 255."""
    d = grid.shape[0]
    values = [int(grid[x, y, z]) for x in range(d) for z in range(d) for y in range(d)]
    runs = bytearray()
    i = 0
    while i < len(values):
        n = 1
        while i + n < len(values) and values[i + n] == values[i] and n < 255:
            n += 1
        runs += bytes([values[i], n])
        i += n
    head = (f"#binvox 1\ndim {d} {d} {d}\ntranslate {translate[0]} {translate[1]} "
            f"{translate[2]}\nscale {scale}\ndata\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head.encode() + bytes(runs))
    return path


def asymmetric_grid(d=8):
    """A bar of 3 voxels along x, 1 along y and 2 along z from the corner, and a block."""
    g = np.zeros((d, d, d), dtype=bool)
    g[0, 0, 0] = True
    g[1:4, 0, 0] = True
    g[0, 1, 0] = True
    g[0, 0, 1:3] = True
    g[5:7, 4:7, 2:4] = True
    return g


def write_npz(path, grids, labels, classes):
    """The packed layout written with numpy only."""
    grids = np.asarray(grids, dtype=bool)
    np.savez(path, occupancy_bits=np.packbits(grids.reshape(len(grids), -1), axis=1),
             label=np.asarray(labels, dtype=np.int64), classes=np.array(classes),
             shape=np.array(grids.shape[1:]))
    return path


def box(d, lo, hi):
    g = np.zeros((d, d, d), dtype=bool)
    g[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return g


# surface sampling ---------------------------------------------------------------------------

def test_single_voxel_samples_its_six_unit_faces_evenly_with_outward_normals():
    g = np.zeros((3, 3, 3), dtype=bool)
    g[1, 1, 1] = True
    n = 6000
    xyz, nrm = surface_points(g, n, np.random.default_rng(0), min_voxels=1)
    assert xyz.shape == nrm.shape == (n, 3)
    assert (xyz >= 1).all() and (xyz <= 2).all()
    # each normal is a signed unit axis; the point lies on the face that normal leaves by
    assert np.array_equal(np.abs(nrm).sum(1), np.ones(n)) and set(np.unique(nrm)) <= {-1, 0, 1}
    rel = xyz - 1.5
    np.testing.assert_allclose((rel * nrm).sum(1), 0.5, atol=1e-12)
    in_plane = rel[nrm == 0].reshape(n, 2)
    assert np.abs(in_plane).max() <= 0.5
    assert abs(in_plane.mean()) < 0.02 and abs(in_plane.var() - 1 / 12) < 0.005  # uniform
    faces, counts = np.unique(nrm, axis=0, return_counts=True)
    assert len(faces) == 6 and np.abs(counts - n / 6).max() < 5 * np.sqrt(n / 6)


def test_hollow_box_samples_only_outer_and_inner_faces():
    g = box(7, (1, 1, 1), (6, 6, 6)) & ~box(7, (2, 2, 2), (5, 5, 5))  # walls one voxel thick
    assert exposed_faces(g).sum() == 6 * 25 + 6 * 9
    n = 8000
    xyz, nrm = surface_points(g, n, np.random.default_rng(1))
    outer = ((xyz == 1) | (xyz == 6)).any(1) & ((xyz >= 1) & (xyz <= 6)).all(1)
    inner = ((xyz == 2) | (xyz == 5)).any(1) & ((xyz >= 2) & (xyz <= 5)).all(1)
    assert (outer ^ inner).all()  # every point on exactly one of the two surfaces
    c = 3.5  # outer normals point away from the centre, inner ones into the cavity
    assert ((nrm * (xyz - c)).sum(1)[outer] == 2.5).all()
    assert ((nrm * (xyz - c)).sum(1)[inner] == -1.5).all()
    assert abs(inner.mean() - 54 / 204) < 0.03  # by area: 54 of 204 unit faces are inside


def test_grid_border_counts_as_outside():
    xyz, nrm = surface_points(np.ones((2, 2, 2), bool), 500, np.random.default_rng(2))
    assert ((xyz == 0) | (xyz == 2)).any(1).all()
    # the coordinate on the face is 0 or 2; the in-plane ones are strictly inside
    np.testing.assert_array_equal(nrm, (xyz == 2).astype(float) - (xyz == 0))


def test_empty_and_almost_empty_grids_are_errors_naming_the_shape():
    with pytest.raises(DataFormatError, match=r"shape_7: the occupancy grid is empty"):
        surface_points(np.zeros((4, 4, 4), bool), 10, np.random.default_rng(0), name="shape_7")
    g = box(4, (0, 0, 0), (1, 1, 3))
    with pytest.raises(DataFormatError, match=r"almost empty \(3 occupied voxels\)"):
        surface_points(g, 10, np.random.default_rng(0))
    assert surface_points(g, 10, np.random.default_rng(0), min_voxels=3)[0].shape == (10, 3)


def test_sampling_is_seeded():
    g = asymmetric_grid()
    a = surface_points(g, 64, np.random.default_rng([0, 5]))
    b = surface_points(g, 64, np.random.default_rng([0, 5]))
    c = surface_points(g, 64, np.random.default_rng([0, 6]))
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


# binvox ------------------------------------------------------------------------------------

def test_binvox_round_trip_keeps_the_axis_order(tmp_path):
    g = asymmetric_grid()  # 512 voxels: runs longer than 255 are split by the writer
    got = read_binvox(write_binvox(tmp_path / "a.binvox", g))
    assert got.dtype == bool and got.shape == (8, 8, 8)
    assert np.array_equal(got, g)
    assert got[3, 0, 0] and got[0, 1, 0] and got[0, 0, 2] and not got[0, 3, 0]


def test_binvox_points_come_in_model_coordinates(tmp_path):
    g = np.zeros((4, 4, 4), bool)
    g[1:4, 0, 0] = True  # a bar along x
    f = write_binvox(tmp_path / "bar.binvox", g, translate=(-1.0, 2.0, 0.5), scale=2.0)
    xyz, nrm = voxel_cloud(f, 400, np.random.default_rng(0), min_voxels=1)
    # voxel units [1, 4] x [0, 1] x [0, 1], scaled by 2/4, shifted by translate
    np.testing.assert_allclose(xyz.min(0), [-0.5, 2.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(xyz.max(0), [1.0, 2.5, 1.0], atol=1e-12)
    with pytest.raises(DataFormatError, match="almost empty"):
        read_cloud(f)  # 3 voxels: below the default min_voxels
    g[1:4, 0:2, 0:2] = True
    d = read_cloud(write_binvox(f, g, scale=4.0), num_points=400, seed=0)
    assert d.pos.shape == d.x.shape == (400, 3)
    np.testing.assert_allclose(d.pos.min(0).values, [1, 0, 0])
    np.testing.assert_allclose(d.pos.max(0).values, [4, 2, 2])


def test_truncated_and_foreign_binvox_files_are_named(tmp_path):
    f = write_binvox(tmp_path / "t.binvox", asymmetric_grid())
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(DataFormatError, match=r"t\.binvox: the runs cover \d+ voxels, but dim 8"):
        read_binvox(f)
    (tmp_path / "x.binvox").write_bytes(b"solid cube\n")
    with pytest.raises(DataFormatError, match="not a binvox file"):
        read_binvox(tmp_path / "x.binvox")


def test_binvox_files_in_the_modelnet_and_folder_layouts(tmp_path):
    root = tmp_path / "ModelNet10_binvox"
    for split, n in (("train", 2), ("test", 1)):
        for k in range(n):
            write_binvox(root / "chair" / split / f"chair_{k:04d}.binvox", box(6, (1, 1, 0),
                                                                            (5, 5, 5 - k)))
    write_binvox(root / "table" / "train" / "table_0001.binvox", box(6, (0, 0, 4), (6, 6, 5)))
    assert kinds_in(root) == ["modelnet_binvox"]
    train = ModelNet(root, "train", variant=10, num_points=64, cache_dir=tmp_path / "c")
    assert train.layout.kind == "modelnet_binvox" and len(train) == 3
    assert [train.classes[i] for i in train.labels] == ["chair", "chair", "table"]
    assert torch.allclose(train[0].x.abs().sum(1), torch.ones(64))
    own = FolderDataset(root, "train", num_points=64, cache_dir=tmp_path / "f")
    assert own.classes == ["chair", "table"] and len(own) == 3


# the packed npz layout ---------------------------------------------------------------------

@pytest.fixture
def voxel_root(tmp_path):
    """modelnet10_voxels8_{train,test}.npz: boxes of known extents, two classes."""
    root = tmp_path / "vox"
    root.mkdir()
    train = [box(8, (0, 0, 0), (2, 4, 8)), box(8, (1, 1, 1), (7, 3, 3)), box(8, (2, 2, 2),
                                                                            (4, 4, 4))]
    write_npz(root / "modelnet10_voxels8_train.npz", train, [1, 0, 1], ["chair", "table"])
    write_npz(root / "modelnet10_voxels8_test.npz", train[:2], [0, 0], ["chair", "table"])
    return root


def test_npz_layout_is_found_and_read_with_the_files_class_names(voxel_root, tmp_path):
    assert kinds_in(voxel_root) == ["modelnet_voxels"]
    train = ModelNet(voxel_root, "train", variant=10, num_points=256, normalize=False,
                     cache_dir=tmp_path / "c")
    assert train.layout.kind == "modelnet_voxels" and train.classes == ["chair", "table"]
    assert train.labels.tolist() == [1, 0, 1] and train.num_classes == 2
    assert train.names[2] == "modelnet10_voxels8_train.npz[2]"
    for i, (lo, hi) in enumerate([((0, 0, 0), (2, 4, 8)), ((1, 1, 1), (7, 3, 3))]):
        pos, x = train[i].pos.double(), train[i].x.double()  # voxel units, axes kept
        lo, hi = torch.tensor(lo, dtype=torch.double), torch.tensor(hi, dtype=torch.double)
        on_hi, on_lo = pos == hi, pos == lo
        assert (on_hi | on_lo).any(1).all() and ((pos >= lo) & (pos <= hi)).all()
        assert torch.equal(x, on_hi.double() - on_lo.double())
    assert len(ModelNet(voxel_root, "test", variant=10, num_points=16, cache_dir=tmp_path / "c")
               ) == 2
    unit = ModelNet(voxel_root, "train", variant=10, num_points=256, cache_dir=tmp_path / "c")
    for d in unit:
        assert d.pos.norm(dim=1).max().item() == pytest.approx(1.0, abs=1e-5)
        assert d.pos.mean(0).abs().max() < 1e-5


def test_missing_test_file_and_other_variant_say_so(voxel_root, tmp_path):
    (voxel_root / "modelnet10_voxels8_test.npz").unlink()
    assert len(ModelNet(voxel_root, "train", variant=10, num_points=16, cache_dir=tmp_path)) == 3
    with pytest.raises(DatasetNotFoundError, match="the test split is not in that folder"):
        ModelNet(voxel_root, "test", variant=10, num_points=16, cache_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="not ModelNet40; use data.name: modelnet10"):
        ModelNet(voxel_root, "train", variant=40, num_points=16, cache_dir=tmp_path)
    (e,) = describe(voxel_root)
    assert (e["name"], e["splits"], e["missing_splits"]) == ("modelnet10", {"train": 3},
                                                             ["test"])
    assert e["per_class"]["train"] == {"chair": 1, "table": 2}
    assert "splits:  train 3; no test split here" in format_description([e])


def test_an_empty_grid_stops_the_build_or_is_skipped(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    grids = [box(8, (0, 0, 0), (3, 3, 3)), np.zeros((8, 8, 8), bool)]
    write_npz(root / "modelnet10_voxels8_train.npz", grids, [0, 1], ["chair", "table"])
    with pytest.raises(DataFormatError, match=r"voxels8_train\.npz\[1\] \(table\): the "
                       r"occupancy grid is empty(.|\n)*data\.skip_bad: true"):
        ModelNet(root, "train", variant=10, num_points=16, cache_dir=tmp_path / "c")
    with pytest.warns(UserWarning, match="1 unreadable"):
        ds = ModelNet(root, "train", variant=10, num_points=16, cache_dir=tmp_path / "c",
                      skip_bad=True)
    assert len(ds) == 1 and [p for p, _ in ds.skipped] == ["modelnet10_voxels8_train.npz[1]"]


def test_save_occupancy_npz_is_the_packed_layout(tmp_path):
    g = np.stack([asymmetric_grid(), box(8, (0, 0, 0), (8, 1, 1))])
    save_occupancy_npz(tmp_path / "a.npz", g, [0, 1], ["x", "y"])
    with np.load(tmp_path / "a.npz") as z:
        back = np.unpackbits(z["occupancy_bits"], axis=1)[:, :512].reshape(2, 8, 8, 8)
        assert np.array_equal(back.astype(bool), g) and z["shape"].tolist() == [8, 8, 8]
    got = read_occupancy_npz(tmp_path / "a.npz")
    assert got.classes == ["x", "y"] and got.label.tolist() == [0, 1] and got.shape == (8, 8, 8)
    np.savez(tmp_path / "b.npz", occupancy_bits=np.zeros((2, 5), np.uint8), label=[0, 0],
             classes=["x"], shape=[8, 8, 8])
    with pytest.raises(DataFormatError, match=r"'occupancy_bits' should be \[S, 64\] uint8"):
        read_occupancy_npz(tmp_path / "b.npz")


# the shared ModelNet10 grids -----------------------------------------------------------------

def _real_grids():
    with np.load(REALDATA / "modelnet10_voxels32_train.npz") as z:
        bits, label, classes = z["occupancy_bits"], z["label"], [str(c) for c in z["classes"]]
    return np.unpackbits(bits, axis=1).reshape(-1, 32, 32, 32).astype(bool), label, classes


@needs_realdata
def test_real_grids_train_through_the_registry_with_their_counts(tmp_path):
    grids, label, classes = _real_grids()
    occupied = grids.sum((1, 2, 3))
    cfg = DataConfig(name="modelnet10", root=str(REALDATA), num_points=32, skip_bad=True,
                     cache_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="skipped"):
        ds = build_dataset(cfg, "train")
    assert ds.layout.kind == "modelnet_voxels" and ds.classes == list(REAL_COUNTS)
    bad = np.nonzero(occupied < 8)[0]
    assert [p for p, _ in ds.skipped] == [f"modelnet10_voxels32_train.npz[{i}]" for i in bad]
    kept = torch.bincount(ds.labels, minlength=10) + torch.from_numpy(
        np.bincount(label[bad], minlength=10))
    assert kept.tolist() == list(REAL_COUNTS.values()) and len(ds) + len(bad) == 3991
    d = ds[100]
    assert torch.allclose(d.x.abs().sum(1), torch.ones(32))
    assert d.pos.norm(dim=1).max().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DatasetNotFoundError, match="test split is not in that folder"):
        build_dataset(cfg, "test")
    e = describe(REALDATA)[0]
    assert (e["kind"], e["name"], e["missing_splits"]) == ("modelnet_voxels", "modelnet10",
                                                           ["test"])
    assert e["per_class"]["train"] == REAL_COUNTS
    assert "  train:   bathtub 106, bed 515, chair 889," in format_description([e])


@needs_realdata
def test_real_grids_keep_their_axes_and_z_is_up(tmp_path):
    grids, label, classes = _real_grids()
    pick = [i for i in np.nonzero(label == classes.index("table"))[0]
            if grids[i].sum() >= 100][:40]
    sub = tmp_path / "sub"
    sub.mkdir()
    write_npz(sub / "modelnet10_voxels32_train.npz", grids[pick], label[pick], classes)
    ds = ModelNet(sub, "train", variant=10, num_points=512, normalize=False,
                  cache_dir=tmp_path / "c")
    high = 0
    for k, i in enumerate(pick):
        idx = np.stack(np.nonzero(grids[i]), axis=1)  # [V, 3] occupied voxels
        pos = ds[k].pos.numpy()
        assert (pos.min(0) >= idx.min(0)).all() and (pos.max(0) <= idx.max(0) + 1).all()
        z = idx[:, 2]
        high += (z.mean() - z.min()) > 0.5 * (z.max() - z.min())  # the top holds the mass
    assert high >= 0.75 * len(pick)  # tables: the top at high z
