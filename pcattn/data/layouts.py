"""Which on-disk layout a dataset root holds, and what to do when it holds none.

A root (``data/modelnet40`` or the folder of an unzipped release) is searched to depth 2
for the layouts below; the first found (shallowest, then in the order of ``LAYOUTS``) is
used unless ``layout=`` names one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pcattn.data.errors import DatasetNotFoundError

CACHE_DIRNAME = "pcattn_cache"

# kind -> (what it looks like, where people get it)
LAYOUTS = {
    "modelnet_normal": (
        "<root>/modelnet40_shape_names.txt, modelnet40_train.txt, modelnet40_test.txt and "
        "<root>/<class>/<class>_0001.txt (10,000 rows 'x,y,z,nx,ny,nz')",
        "modelnet40_normal_resampled.zip (PointNet++ release)"),
    "modelnet_h5": (
        "<root>/ply_data_train0.h5 ... ply_data_test0.h5 (keys data, label), shape_names.txt, "
        "train_files.txt, test_files.txt",
        "modelnet40_ply_hdf5_2048.zip (PointNet release)"),
    "modelnet_off": (
        "<root>/<class>/train/<class>_0001.off and <root>/<class>/test/<class>_0001.off",
        "ModelNet40.zip or ModelNet10.zip from modelnet.cs.princeton.edu (PyG's raw/ folder "
        "has the same layout)"),
    "modelnet_voxels": (
        "<root>/modelnet10_voxels32_train.npz (and ..._test.npz): occupancy grids packed "
        "with np.packbits (arrays occupancy_bits, label, classes, shape), files named "
        "modelnet{10,40}_voxels<anything>_{train,test}.npz",
        "a ModelNet voxelization (e.g. the 32^3 ModelNet10 grids of the Ektagavas/3d-object-cls "
        "repository), packed by pcattn.data.voxels.save_occupancy_npz"),
    "modelnet_binvox": (
        "<root>/<class>/train/<class>_0001.binvox and <root>/<class>/test/<class>_0001.binvox",
        "ModelNet meshes voxelized with binvox (e.g. 'binvox -d 32' on each .off file), kept "
        "in the ModelNet folder layout"),
    "shapenetpart_normal": (
        "<root>/synsetoffset2category.txt, <root>/train_test_split/shuffled_{train,val,test}"
        "_file_list.json and <root>/<synset>/<id>.txt (rows 'x y z nx ny nz part')",
        "shapenetcore_partanno_segmentation_benchmark_v0_normal.zip (PointNet++ release)"),
    "shapenetpart_h5": (
        "<root>/ply_data_train0.h5 ... ply_data_val0.h5, ply_data_test0.h5 (keys data, label, "
        "pid)",
        "shapenet_part_seg_hdf5_data.zip (PointNet release, folder hdf5_data)"),
}
MODELNET_KINDS = ("modelnet_normal", "modelnet_h5", "modelnet_off", "modelnet_voxels",
                  "modelnet_binvox")
# modelnet{10,40}_voxels<resolution, anything>_{train,test}.npz: (prefix, variant, split)
VOXEL_FILE = re.compile(r"^(modelnet(10|40)_voxels.*)_(train|test)\.npz$")
SHAPENETPART_KINDS = ("shapenetpart_normal", "shapenetpart_h5")


@dataclass(frozen=True)
class Layout:
    """A layout ``kind`` found in the folder ``path``."""

    kind: str
    path: Path


def voxel_files(d: Path) -> list[Path]:
    """The packed occupancy files of the ``modelnet_voxels`` layout in the folder ``d``."""
    return sorted(p for p in d.glob("modelnet*_voxels*.npz") if VOXEL_FILE.match(p.name))


def _h5_files(d: Path) -> list[Path]:
    return sorted(d.glob("ply_data_*.h5"))


def _h5_has_pid(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "pid" in f
    except OSError:
        return False


def kinds_in(d: Path) -> list[str]:
    """The layouts that the folder ``d`` itself holds, in the order of ``LAYOUTS``."""
    out = []
    if any((d / f"modelnet{v}_shape_names.txt").is_file() for v in (40, 10)):
        out.append("modelnet_normal")
    h5 = _h5_files(d)
    if h5:
        part = ((d / "all_object_categories.txt").is_file()
                or (d / "catid_partid_to_overallid.json").is_file() or _h5_has_pid(h5[0]))
        out.append("shapenetpart_h5" if part else "modelnet_h5")
    if _has_class_split_dirs(d, ".off"):
        out.append("modelnet_off")
    if voxel_files(d):
        out.append("modelnet_voxels")
    if _has_class_split_dirs(d, ".binvox"):
        out.append("modelnet_binvox")
    if (d / "synsetoffset2category.txt").is_file():
        out.append("shapenetpart_normal")
    return [k for k in LAYOUTS if k in out]


def _has_class_split_dirs(d: Path, suffix: str) -> bool:
    try:
        children = [c for c in d.iterdir() if c.is_dir()]
    except OSError:
        return False
    for c in children:
        for split in ("train", "test"):
            s = c / split
            if s.is_dir() and any(s.glob(f"*{suffix}")):
                return True
    return False


def find_layouts(root: str | os.PathLike, kinds: tuple[str, ...] = tuple(LAYOUTS)
                 ) -> list[Layout]:
    """All layouts of ``kinds`` under ``root`` (depth <= 2), shallowest first."""
    root = Path(root)
    found: list[Layout] = []
    level = [root] if root.is_dir() else []
    for _ in range(3):
        for d in level:
            found += [Layout(k, d) for k in kinds_in(d) if k in kinds]
        level = [c for d in level for c in _subdirs(d)]
    return found


def _subdirs(d: Path) -> list[Path]:
    try:
        return sorted(c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")
                      and c.name != CACHE_DIRNAME)
    except OSError:
        return []


def choose_layout(root: str | os.PathLike, kinds: tuple[str, ...], *, layout: str = "auto",
                  prefer: str = "") -> Layout:
    """The layout to read under ``root``; ``prefer`` breaks ties by folder name, or by the
    file names of a voxel layout (e.g. "10").

    Raises:
        DatasetNotFoundError: nothing of ``kinds`` is there; the message lists what was
            looked for and where to get it.
    """
    if layout != "auto":
        if layout not in kinds:
            raise ValueError(f"layout {layout!r} does not hold this dataset; use 'auto' or one "
                             f"of {list(kinds)}")
        kinds = (layout,)
    found = find_layouts(root, kinds)
    if not found:
        raise not_found_error(root, kinds)
    if prefer:
        named = [f for f in found if prefer in _title(f)]
        if named:
            return named[0]
    return found[0]


def _title(layout: Layout) -> str:
    """What ``prefer`` is matched against: the folder's name, or the voxel files' names."""
    names = [layout.path.name]
    if layout.kind == "modelnet_voxels":
        names = [p.name for p in voxel_files(layout.path)]
    return " ".join(names).lower()


def not_found_error(root: str | os.PathLike, kinds: tuple[str, ...]) -> DatasetNotFoundError:
    root = Path(root)
    if root.exists() and not root.is_dir():
        return DatasetNotFoundError(f"{root} is a file, not a folder: data.root names the "
                                    f"folder that holds the dataset; set it to {root.parent} "
                                    "or to the folder the dataset was unzipped into")
    state = "does not exist" if not root.exists() else "holds none of the known layouts"
    lines = [f"{root} {state}. Looked for (under it, to depth 2):"]
    for k in kinds:
        shape, source = LAYOUTS[k]
        lines.append(f"  - {k}: {shape}; from the public release {source}")
    lines.append(f"pcattn never downloads data: get one of these releases yourself, unzip it "
                 f"into {root}/ (or set data.root to the folder that holds it) and run "
                 f"`pcattn data info {root}` to check what is found. Your own clouds: "
                 "data.name: folder with <root>/<class>/<file> (.ply, .txt, .off, ...).")
    return DatasetNotFoundError("\n".join(lines))
