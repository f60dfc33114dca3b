import json

import h5py
import pytest
import torch
from torch_geometric.loader import DataLoader

from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.shapenetpart import (
    NUM_PARTS,
    SHAPENETPART_CATEGORIES,
    SHAPENETPART_PARTS,
    ShapeNetPart,
    category_part_mask,
    part_to_category,
)

from datafixtures import SHAPENET_SHAPES

CATS = list(SHAPENETPART_CATEGORIES)


def test_standard_category_part_table():
    assert len(SHAPENETPART_CATEGORIES) == 16 and NUM_PARTS == 50
    expected = {"Airplane": (0, 3), "Bag": (4, 5), "Cap": (6, 7), "Car": (8, 11),
                "Chair": (12, 15), "Earphone": (16, 18), "Guitar": (19, 21), "Knife": (22, 23),
                "Lamp": (24, 27), "Laptop": (28, 29), "Motorbike": (30, 35), "Mug": (36, 37),
                "Pistol": (38, 40), "Rocket": (41, 43), "Skateboard": (44, 46),
                "Table": (47, 49)}
    assert {c: (p[0], p[-1]) for c, p in SHAPENETPART_PARTS.items()} == expected
    assert CATS == list(expected)  # label order
    assert SHAPENETPART_CATEGORIES["Chair"] == "03001627"
    assert SHAPENETPART_CATEGORIES["Table"] == "04379243"
    p2c = part_to_category()
    assert p2c.shape == (50,) and p2c[12].item() == CATS.index("Chair")
    mask = category_part_mask()
    assert mask.shape == (16, 50) and mask.sum().item() == 50
    assert mask.sum(0).tolist() == [1] * 50
    assert mask[CATS.index("Motorbike")].nonzero().flatten().tolist() == list(range(30, 36))


def _check(ds, n):
    for i in range(len(ds)):
        d = ds[i]
        cat = CATS[d.category.item()]
        assert d.pos.shape == (n, 3) and d.x.shape == (n, 3)
        assert d.y.shape == (n,) and d.y.dtype == torch.long
        assert d.category.shape == (1,)
        lo, hi = SHAPENETPART_PARTS[cat][0], SHAPENETPART_PARTS[cat][-1]
        assert lo <= d.y.min() and d.y.max() <= hi


def test_txt_layout_splits_counts_and_labels(shapenet_normal, tmp_path):
    split_cats = {s: [CATS.index(c) for c, _, _ in v] for s, v in SHAPENET_SHAPES.items()}
    for split in ("train", "val", "test"):
        ds = ShapeNetPart(shapenet_normal, split, num_points=64, cache_dir=tmp_path)
        assert ds.labels.tolist() == split_cats[split]
        _check(ds, 64)
    tv = ShapeNetPart(shapenet_normal, "trainval", num_points=None, cache_dir=tmp_path)
    assert tv.labels.tolist() == split_cats["train"] + split_cats["val"]
    assert [tv[i].num_nodes for i in range(len(tv))] == [120, 90, 80, 100]
    assert tv.num_classes == 50 and tv.num_categories == 16
    assert torch.equal(tv.part_mask, category_part_mask())
    # whole clouds keep the per-row labels of the file, in order
    parts = SHAPENETPART_PARTS["Airplane"]
    assert tv[0].y.tolist() == [parts[i % 4] for i in range(120)]


def test_resampling_is_fixed_on_eval_splits_and_varies_in_training(shapenet_normal, tmp_path):
    test = ShapeNetPart(shapenet_normal, "test", num_points=200, cache_dir=tmp_path)
    a, b = test[0], test[0]
    assert a.num_nodes == 200 and torch.equal(a.pos, b.pos) and torch.equal(a.y, b.y)
    train = ShapeNetPart(shapenet_normal, "train", num_points=50, cache_dir=tmp_path)
    assert not torch.equal(train[0].pos, train[0].pos)
    # points keep their labels: every resampled point is a row of the whole cloud
    whole = ShapeNetPart(shapenet_normal, "test", num_points=None, cache_dir=tmp_path)[0]
    key = {tuple(p.tolist()): y for p, y in zip(whole.pos, whole.y.tolist())}
    assert all(key[tuple(p.tolist())] == y for p, y in zip(a.pos, a.y.tolist()))


def test_category_subset_keeps_global_part_ids(shapenet_normal, tmp_path):
    ds = ShapeNetPart(shapenet_normal, "trainval", categories=["mug", "04379243"],
                      num_points=32, cache_dir=tmp_path)
    assert sorted(CATS[c] for c in ds.labels.tolist()) == ["Mug", "Table"]
    assert ds[0].y.min() >= 36
    with pytest.raises(ValueError, match="unknown ShapeNetPart category 'Plane'"):
        ShapeNetPart(shapenet_normal, "train", categories=["Plane"], cache_dir=tmp_path)


def test_h5_layout(shapenet_h5, tmp_path):
    ds = ShapeNetPart(shapenet_h5, "trainval", num_points=None, use_normals=False,
                      cache_dir=tmp_path)
    assert ds.layout.kind == "shapenetpart_h5"
    assert ds.labels.tolist() == [0, 11, 0, 15]
    d = ds[1]
    assert d.x is None and d.y.shape == (48,) and set(d.y.tolist()) == {36, 37}
    test = ShapeNetPart(shapenet_h5, "test", num_points=16, use_normals=False,
                        cache_dir=tmp_path)
    batch = next(iter(DataLoader(test, batch_size=2)))
    assert batch.pos.shape == (32, 3) and batch.y.shape == (32,)
    assert batch.category.tolist() == [11, 4]
    with pytest.raises(DataFormatError, match="no normals.*use_normals: false"):
        ShapeNetPart(shapenet_h5, "test", cache_dir=tmp_path)


def test_h5_without_pid_names_the_key(shapenet_h5, tmp_path):
    with h5py.File(shapenet_h5 / "ply_data_val0.h5", "a") as f:
        del f["pid"]
    with pytest.raises(DataFormatError, match=r"ply_data_val0\.h5: no 'pid' dataset"):
        ShapeNetPart(shapenet_h5, "val", layout="shapenetpart_h5", use_normals=False,
                     cache_dir=tmp_path)


def test_errors_name_the_file_and_entry(shapenet_normal, tmp_path):
    listing = shapenet_normal / "train_test_split/shuffled_test_file_list.json"
    entries = json.loads(listing.read_text())
    listing.write_text(json.dumps(entries + ["shape_data/03797390/nothere"]))
    with pytest.raises(DatasetNotFoundError, match="entry 2 names 'shape_data/03797390/nothere'"):
        ShapeNetPart(shapenet_normal, "test", cache_dir=tmp_path)
    listing.write_text(json.dumps(entries))
    f = shapenet_normal / "03797390" / "m2.txt"
    lines = f.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:6] + ["3.000000"])  # part 3 is an Airplane part
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"m2\.txt: row 5 has part 3, not a part of Mug"):
        ShapeNetPart(shapenet_normal, "test", cache_dir=tmp_path)
    (shapenet_normal / "train_test_split/shuffled_val_file_list.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="shuffled_val_file_list.json is missing"):
        ShapeNetPart(shapenet_normal, "val", cache_dir=tmp_path)


def test_missing_root_names_shapenetpart_layouts(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        ShapeNetPart(tmp_path)
    msg = str(err.value)
    assert "holds none of the known layouts" in msg
    assert "synsetoffset2category.txt" in msg and "shapenetpart_h5" in msg
    assert "modelnet" not in msg
