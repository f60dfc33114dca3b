"""ModelNet40 / ModelNet10 classification, read from any of its usual layouts.

- ``modelnet_off``: Princeton's meshes, ``<class>/{train,test}/<class>_NNNN.off``, sampled
  by surface area with face normals (seeded per file);
- ``modelnet_normal``: PointNet++'s ``modelnet40_normal_resampled`` text files;
- ``modelnet_h5``: PointNet's ``modelnet40_ply_hdf5_2048``;
- ``modelnet_voxels``: occupancy grids packed in ``modelnet10_voxels32_{train,test}.npz``
  (class names from the file), sampled on the exposed voxel faces with their outward normals
  (seeded per grid: ``[seed, index]``), in the grid's axis order (x, y, z; z is up);
- ``modelnet_binvox``: ``<class>/{train,test}/<class>_NNNN.binvox`` grids, sampled the same
  way (seeded per file).

Labels follow the official class order (``MODELNET40_CLASSES``, or the release's own
``*shape_names.txt``). ModelNet10 is read from ModelNet10 files, or from a ModelNet40
layout restricted to its ten classes.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from pcattn.data.base import (Clouds, CloudDataset, SAMPLINGS, cache_file, downsample,
                              fingerprint, read_all)
from pcattn.data.errors import DataFormatError, DatasetNotFoundError, SplitMissingError
from pcattn.data.geometry import normalize_unit_sphere, sample_surface
from pcattn.data.h5 import h5_files, read_h5
from pcattn.data.io import read_off, read_rows
from pcattn.data.layouts import MODELNET_KINDS, VOXEL_FILE, Layout, choose_layout, voxel_files
from pcattn.data.voxels import (MIN_VOXELS, read_occupancy_npz, surface_points, unpack_grid,
                                voxel_cloud)

MODELNET40_CLASSES = (
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair",
    "cone", "cup", "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar",
    "keyboard", "lamp", "laptop", "mantel", "monitor", "night_stand", "person", "piano",
    "plant", "radio", "range_hood", "sink", "sofa", "stairs", "stool", "table", "tent",
    "toilet", "tv_stand", "vase", "wardrobe", "xbox")
MODELNET10_CLASSES = ("bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand",
                      "sofa", "table", "toilet")
SPLITS = ("train", "test")
SAMPLED_KINDS = ("modelnet_off", "modelnet_voxels", "modelnet_binvox")  # no `sampling` cut


def _names_file(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def modelnet_classes(layout: Layout, variant: int) -> list[str]:
    """Class names in label order for ``variant`` (40 or 10) read from ``layout``."""
    official = list(MODELNET40_CLASSES if variant == 40 else MODELNET10_CLASSES)
    if layout.kind == "modelnet_normal":
        f = layout.path / f"modelnet{variant}_shape_names.txt"
        return _names_file(f) if f.is_file() else official
    if layout.kind == "modelnet_h5" and variant == 40:
        f = layout.path / "shape_names.txt"
        return _names_file(f) if f.is_file() else official
    if layout.kind == "modelnet_voxels":
        prefix = _voxel_prefix(layout.path, variant)
        f = next(layout.path / f"{prefix}_{s}.npz" for s in SPLITS
                 if (layout.path / f"{prefix}_{s}.npz").is_file())
        return read_occupancy_npz(f).classes
    return official


def _voxel_prefix(d: Path, variant: int) -> str:
    """``modelnet10_voxels32`` of the one ModelNet``variant`` voxel set in the folder ``d``."""
    files = voxel_files(d)
    found = [VOXEL_FILE.match(p.name) for p in files]  # (prefix, variant, split) each
    mine = sorted({m.group(1) for m in found if m.group(2) == str(variant)})
    if not mine:
        other = sorted({m.group(2) for m in found}) or ["40" if variant == 10 else "10"]
        raise DatasetNotFoundError(
            f"{d}: its voxel files ({', '.join(p.name for p in files) or 'none'}) hold "
            f"ModelNet{'/'.join(other)}, not ModelNet{variant}; use data.name: "
            f"modelnet{other[0]} (variant={other[0]})")
    if len(mine) > 1:
        raise DataFormatError(f"{d} holds several ModelNet{variant} voxel sets "
                              f"({', '.join(mine)}); keep one per folder")
    return mine[0]


def voxel_file(d: Path, variant: int, split: str) -> Path:
    """The packed npz of ``split`` in the ``modelnet_voxels`` folder ``d``.

    Raises:
        SplitMissingError: the folder holds the other split only.
    """
    prefix = _voxel_prefix(d, variant)
    f = d / f"{prefix}_{split}.npz"
    if not f.is_file():
        raise SplitMissingError(f"{d}: the {split} split is not in that folder: it holds "
                                f"{prefix}_{'test' if split == 'train' else 'train'}.npz but "
                                f"no {f.name} beside it; put {f.name} (same arrays) there to "
                                f"read the {split} split")
    return f


def list_files(layout: Layout, split: str, variant: int) -> list[tuple[Path, int]]:
    """(file, label) of each shape of ``split`` (for h5: each file, label -1)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    classes = modelnet_classes(layout, variant)
    if layout.kind in ("modelnet_off", "modelnet_binvox"):
        suffix = ".off" if layout.kind == "modelnet_off" else ".binvox"
        return _off_files(layout.path, split, classes, variant, suffix)
    if layout.kind == "modelnet_voxels":
        f = voxel_file(layout.path, variant, split)
        return [(f, int(label)) for label in read_occupancy_npz(f).label]
    if layout.kind == "modelnet_normal":
        return _normal_files(layout.path, split, classes, variant)
    return [(p, -1) for p in h5_files(layout.path, split, "files")]


def _off_files(d: Path, split: str, classes: list[str], variant: int, suffix: str):
    out = []
    for c in sorted(p for p in d.iterdir() if (p / split).is_dir()):
        if c.name not in classes:
            if c.name in MODELNET40_CLASSES:
                continue  # a ModelNet40 class, left out of ModelNet10
            raise DataFormatError(f"{c}: {c.name!r} is not a ModelNet{variant} class (classes: "
                                  f"{', '.join(classes)}); for your own classes use the folder "
                                  "dataset (data.name: folder)")
        label = classes.index(c.name)
        out += [(f, label) for f in sorted((c / split).glob(f"*{suffix}"))]
    return out


def _normal_files(d: Path, split: str, classes: list[str], variant: int):
    own = d / f"modelnet{variant}_{split}.txt"
    listing = own if own.is_file() else d / f"modelnet40_{split}.txt"
    if not listing.is_file():
        raise DatasetNotFoundError(f"{listing} is missing: the {split} split list of the "
                                   "modelnet40_normal_resampled layout (one shape name a line)")
    out = []
    for lineno, line in enumerate(listing.read_text().splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        cls = name.rsplit("_", 1)[0]
        if cls not in classes:
            if listing != own and cls in MODELNET40_CLASSES:
                continue  # ModelNet10 from the ModelNet40 list
            raise DataFormatError(f"{listing}, line {lineno}: {name!r} is of class {cls!r}, "
                                  f"which is not in the shape names ({len(classes)} classes)")
        f = d / cls / f"{name}.txt"
        if not f.is_file():
            raise DatasetNotFoundError(f"{listing}, line {lineno} names {name!r} but {f} does "
                                       "not exist; copy it there or remove the line")
        out.append((f, classes.index(cls)))
    return out


class ModelNet(CloudDataset):
    """ModelNet40 or ModelNet10 from ``root`` (layout auto-detected), cached once.

    Args:
        root: folder holding a layout (searched to depth 2), e.g. ``data/modelnet40``.
        split: ``"train"`` or ``"test"``.
        variant: 40 or 10.
        num_points: points per cloud (sampled from meshes and grids; taken from point
            layouts).
        use_normals: items carry the normals as ``x``.
        layout: ``"auto"`` or one of ``modelnet_off``, ``modelnet_normal``, ``modelnet_h5``,
            ``modelnet_voxels``, ``modelnet_binvox``.
        sampling: how point layouts are cut to ``num_points``: ``"first"`` rows (what
            PointNet/PointNet++ do; ``"auto"``), ``"random"`` or ``"fps"``.
        normalize: centre each cloud and scale it into the unit sphere.
        seed: seeds mesh sampling and random cuts (part of the cache key).
        cache_dir: where the cache goes (default ``<layout folder>/pcattn_cache``).
        transform: applied to each item (see :mod:`pcattn.data.transforms`).
        skip_bad: skip unreadable files and (almost) empty grids (listed in ``skipped``,
            with a warning).
        progress: show a progress bar while building the cache.
    """

    def __init__(self, root: str | os.PathLike = "data/modelnet40", split: str = "train", *,
                 variant: int = 40, num_points: int = 1024, use_normals: bool = True,
                 layout: str = "auto", sampling: str = "auto", normalize: bool = True,
                 seed: int = 0, cache_dir: str | os.PathLike | None = None,
                 transform: Callable | None = None, skip_bad: bool = False,
                 progress: bool = False) -> None:
        if variant not in (10, 40):
            raise ValueError(f"variant must be 40 or 10, got {variant}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        sampling = "first" if sampling == "auto" else sampling
        self.layout = choose_layout(root, MODELNET_KINDS, layout=layout, prefer=str(variant))
        self.source, self.variant = self.layout.path, variant
        self.classes = modelnet_classes(self.layout, variant)
        files = list_files(self.layout, split, variant)
        if not files:
            raise DatasetNotFoundError(f"{self.layout.path}: no {split} shapes found in the "
                                       f"{self.layout.kind} layout")
        kind = self.layout.kind
        options = dict(kind=kind, version=1, variant=variant, split=split,
                       num_points=num_points, normalize=normalize, skip_bad=skip_bad,
                       sampling=None if kind in SAMPLED_KINDS else sampling,
                       seed=seed, files=fingerprint(dict.fromkeys(f for f, _ in files)))
        if kind in ("modelnet_voxels", "modelnet_binvox"):
            options["min_voxels"] = MIN_VOXELS
        if kind == "modelnet_voxels":  # one file: an entry per grid, (name, label, index)
            files = [(f"{f.name}[{i}]", label, i) for i, (f, label) in enumerate(files)]
        path = cache_file(self.layout.path, cache_dir, f"modelnet{variant}_{split}", options)
        desc = f"modelnet{variant} {split} ({self.layout.kind})"

        def build() -> dict:
            read = self._reader(num_points, sampling, normalize, seed, split)
            return read_all(files, read, Clouds(), skip_bad=skip_bad, progress=progress,
                            desc=desc).pack()

        self._load(path, options, build, split=split, use_normals=use_normals,
                   transform=transform, seed=seed)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _reader(self, num_points: int, sampling: str, normalize: bool, seed: int, split: str):
        kind, root = self.layout.kind, self.layout.path

        def finish(name, label, xyz, nrm, clouds):
            if normalize:
                xyz = normalize_unit_sphere(xyz)
            clouds.add(name, label, xyz, nrm)

        def rng(path: Path) -> np.random.Generator:
            rel = str(path.relative_to(root)).replace(os.sep, "/")
            return np.random.default_rng([seed, zlib.crc32(rel.encode())])

        def cut(path, xyz, nrm, r):
            if len(xyz) < num_points:
                raise DataFormatError(f"{path}: has {len(xyz)} points, fewer than num_points="
                                      f"{num_points}; use num_points <= {len(xyz)}")
            keep = downsample(xyz, num_points, sampling, r)
            return xyz[keep], None if nrm is None else nrm[keep]

        def read_off_entry(entry, clouds):
            path, label = entry
            v, f = read_off(path)
            xyz, nrm, _ = sample_surface(v, f, num_points, rng(path), name=str(path))
            finish(str(path.relative_to(root)), label, xyz, nrm, clouds)

        def read_txt_entry(entry, clouds):
            path, label = entry
            rows = read_rows(path, min_columns=6)
            xyz, nrm = cut(path, rows[:, :3], rows[:, 3:6], rng(path))
            finish(str(path.relative_to(root)), label, xyz, nrm, clouds)

        def read_binvox_entry(entry, clouds):
            path, label = entry
            xyz, nrm = voxel_cloud(path, num_points, rng(path))
            finish(str(path.relative_to(root)), label, xyz, nrm, clouds)

        grids = (read_occupancy_npz(voxel_file(root, self.variant, split))
                 if kind == "modelnet_voxels" else None)

        def read_grid_entry(entry, clouds):
            name, label, i = entry
            grid = unpack_grid(grids.bits[i], grids.shape)  # [D0, D1, D2]
            xyz, nrm = surface_points(grid, num_points, np.random.default_rng([seed, i]),
                                      name=f"{root / name} ({self.classes[label]})")
            finish(name, label, xyz, nrm, clouds)

        h5_map = self._h5_label_map()

        def read_h5_entry(entry, clouds):
            path, _ = entry
            a = read_h5(path, ("data", "label"), ("normal",))
            labels = a["label"].reshape(len(a["label"]), -1)[:, 0].astype(np.int64)
            for i, (xyz, lab) in enumerate(zip(a["data"], labels)):
                if not 0 <= lab < len(h5_map):
                    raise DataFormatError(f"{path}: 'label'[{i}] = {lab} is outside the "
                                          f"{len(h5_map)} classes of shape_names.txt")
                if h5_map[lab] < 0:
                    continue  # not a class of this variant
                nrm = a["normal"][i] if "normal" in a else None
                xyz, nrm = cut(f"{path}['data'][{i}]", xyz.astype(np.float64), nrm,
                               np.random.default_rng([seed, zlib.crc32(path.name.encode()), i]))
                finish(f"{path.name}[{i}]", int(h5_map[lab]), xyz, nrm, clouds)

        return {"modelnet_off": read_off_entry, "modelnet_normal": read_txt_entry,
                "modelnet_h5": read_h5_entry, "modelnet_voxels": read_grid_entry,
                "modelnet_binvox": read_binvox_entry}[kind]

    def _h5_label_map(self) -> np.ndarray:
        """h5 label (ModelNet40 order of the release) -> label of this variant, or -1."""
        if self.layout.kind != "modelnet_h5":
            return np.zeros(0, dtype=np.int64)
        f = self.layout.path / "shape_names.txt"
        names40 = _names_file(f) if f.is_file() else list(MODELNET40_CLASSES)
        return np.array([self.classes.index(n) if n in self.classes else -1 for n in names40])
