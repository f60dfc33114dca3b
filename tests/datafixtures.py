"""Tiny datasets written in each real layout, and the path to the shared real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "README.md").is_file(),
    reason=f"real benchmark files not found at {REALDATA} (../shared/realdata from the repo)")

# a unit cube: 8 vertices, 6 quads (exercises polygon triangulation)
CUBE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                   [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)
CUBE_F = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]


def write_off(path: Path, v=CUBE_V, faces=CUBE_F, *, broken_header=False, scale=1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"OFF{len(v)} {len(faces)} 0\n" if broken_header else f"OFF\n{len(v)} {len(faces)} 0\n"
    body = "".join(f"{a * scale} {b * scale} {c * scale}\n" for a, b, c in v)
    body += "".join(f"{len(f)} " + " ".join(map(str, f)) + "\n" for f in faces)
    path.write_text(head + body)
    return path


def write_rows(path: Path, rows: np.ndarray, sep: str = ",", fmt: str = "%.6f") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=sep, fmt=fmt)
    return path


def cloud_rows(n: int, seed: int, *, extra: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 3)) + seed
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    cols = [xyz, nrm] + ([extra[:, None]] if extra is not None else [])
    return np.concatenate(cols, axis=1)


@pytest.fixture
def modelnet_off(tmp_path) -> Path:
    """ModelNet40-style OFF tree: chair 2 train + 1 test, sofa 1 train (broken header) +
    1 test; plus a 'desk' class with only a test file."""
    root = tmp_path / "ModelNet40"
    write_off(root / "chair/train/chair_0001.off")
    write_off(root / "chair/train/chair_0002.off", scale=3.0)
    write_off(root / "chair/test/chair_0890.off")
    write_off(root / "sofa/train/sofa_0001.off", broken_header=True)
    write_off(root / "sofa/test/sofa_0681.off", broken_header=True, scale=0.5)
    write_off(root / "desk/test/desk_0201.off")
    return root


@pytest.fixture
def modelnet_normal(tmp_path) -> Path:
    """modelnet40_normal_resampled-style: 3 classes, 200 rows per shape."""
    root = tmp_path / "modelnet40_normal_resampled"
    root.mkdir()
    from pcattn.data.modelnet import MODELNET40_CLASSES

    (root / "modelnet40_shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    train = ["airplane_0001", "airplane_0002", "night_stand_0001", "sofa_0003"]
    test = ["airplane_0627", "sofa_0681"]
    for k, name in enumerate(train + test):
        cls = name.rsplit("_", 1)[0]
        write_rows(root / cls / f"{name}.txt", cloud_rows(200, k))
    (root / "modelnet40_train.txt").write_text("\n".join(train) + "\n")
    (root / "modelnet40_test.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def modelnet_h5(tmp_path) -> Path:
    """modelnet40_ply_hdf5_2048-style: 2 train files, 1 test file, 64 points, normals."""
    import h5py

    from pcattn.data.modelnet import MODELNET40_CLASSES

    root = tmp_path / "modelnet40_ply_hdf5_2048"
    root.mkdir()
    (root / "shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    rng = np.random.default_rng(0)
    files = {"train": ["ply_data_train0.h5", "ply_data_train1.h5"], "test": ["ply_data_test0.h5"]}
    labels = {"ply_data_train0.h5": [0, 8, 8], "ply_data_train1.h5": [30, 39],
              "ply_data_test0.h5": [8, 1]}
    for split, names in files.items():
        for name in names:
            b = len(labels[name])
            with h5py.File(root / name, "w") as f:
                f["data"] = rng.normal(size=(b, 64, 3)).astype(np.float32)
                f["label"] = np.array(labels[name], dtype=np.uint8)[:, None]
                f["normal"] = rng.normal(size=(b, 64, 3)).astype(np.float32)
        (root / f"{split}_files.txt").write_text(
            "".join(f"data/modelnet40_ply_hdf5_2048/{n}\n" for n in names))
    return root


SHAPENET_SHAPES = {  # split -> [(category, id, n points)]
    "train": [("Airplane", "a1", 120), ("Airplane", "a2", 90), ("Mug", "m1", 80)],
    "val": [("Table", "t1", 100)],
    "test": [("Airplane", "a3", 70), ("Mug", "m2", 110)],
}


@pytest.fixture
def shapenet_normal(tmp_path) -> Path:
    """shapenetcore_partanno_segmentation_benchmark_v0_normal-style."""
    from pcattn.data.shapenetpart import SHAPENETPART_CATEGORIES, SHAPENETPART_PARTS

    root = tmp_path / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    root.mkdir()
    (root / "synsetoffset2category.txt").write_text(
        "".join(f"{c}\t{s}\n" for c, s in SHAPENETPART_CATEGORIES.items()))
    (root / "train_test_split").mkdir()
    for k, (split, shapes) in enumerate(SHAPENET_SHAPES.items()):
        entries = []
        for j, (cat, sid, n) in enumerate(shapes):
            syn = SHAPENETPART_CATEGORIES[cat]
            parts = SHAPENETPART_PARTS[cat]
            seg = np.array([parts[i % len(parts)] for i in range(n)], dtype=float)
            write_rows(root / syn / f"{sid}.txt", cloud_rows(n, 10 * k + j, extra=seg), sep=" ")
            entries.append(f"shape_data/{syn}/{sid}")
        (root / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps(entries))
    return root


@pytest.fixture
def shapenet_h5(tmp_path) -> Path:
    """hdf5_data-style ShapeNetPart: data, label (category), pid (global parts)."""
    import h5py

    from pcattn.data.shapenetpart import SHAPENETPART_PARTS

    root = tmp_path / "hdf5_data"
    root.mkdir()
    parts = list(SHAPENETPART_PARTS.values())
    rng = np.random.default_rng(1)
    for name, cats in {"ply_data_train0.h5": [0, 11, 0], "ply_data_val0.h5": [15],
                       "ply_data_test0.h5": [11, 4]}.items():
        with h5py.File(root / name, "w") as f:
            f["data"] = rng.normal(size=(len(cats), 48, 3)).astype(np.float32)
            f["label"] = np.array(cats, dtype=np.uint8)[:, None]
            f["pid"] = np.array([[parts[c][i % len(parts[c])] for i in range(48)]
                                 for c in cats], dtype=np.uint8)
    return root
