"""ModelNet40 / ModelNet10 classification, read from any of its three usual layouts.

- ``modelnet_off``: Princeton's meshes, ``<class>/{train,test}/<class>_NNNN.off``, sampled
  by surface area with face normals (seeded per file);
- ``modelnet_normal``: PointNet++'s ``modelnet40_normal_resampled`` text files;
- ``modelnet_h5``: PointNet's ``modelnet40_ply_hdf5_2048``.

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
from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.geometry import normalize_unit_sphere, sample_surface
from pcattn.data.h5 import h5_files, read_h5
from pcattn.data.io import read_off, read_rows
from pcattn.data.layouts import MODELNET_KINDS, Layout, choose_layout

MODELNET40_CLASSES = (
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair",
    "cone", "cup", "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar",
    "keyboard", "lamp", "laptop", "mantel", "monitor", "night_stand", "person", "piano",
    "plant", "radio", "range_hood", "sink", "sofa", "stairs", "stool", "table", "tent",
    "toilet", "tv_stand", "vase", "wardrobe", "xbox")
MODELNET10_CLASSES = ("bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand",
                      "sofa", "table", "toilet")
SPLITS = ("train", "test")


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
    return official


def list_files(layout: Layout, split: str, variant: int) -> list[tuple[Path, int]]:
    """(file, label) of each shape of ``split`` (for h5: each file, label -1)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    classes = modelnet_classes(layout, variant)
    if layout.kind == "modelnet_off":
        return _off_files(layout.path, split, classes, variant)
    if layout.kind == "modelnet_normal":
        return _normal_files(layout.path, split, classes, variant)
    return [(p, -1) for p in h5_files(layout.path, split, "files")]


def _off_files(d: Path, split: str, classes: list[str], variant: int):
    out = []
    for c in sorted(p for p in d.iterdir() if (p / split).is_dir()):
        if c.name not in classes:
            if c.name in MODELNET40_CLASSES:
                continue  # a ModelNet40 class, left out of ModelNet10
            raise DataFormatError(f"{c}: {c.name!r} is not a ModelNet{variant} class (classes: "
                                  f"{', '.join(classes)}); for your own classes use the folder "
                                  "dataset (data.name: folder)")
        label = classes.index(c.name)
        out += [(f, label) for f in sorted((c / split).glob("*.off"))]
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
        num_points: points per cloud (sampled from meshes; taken from point layouts).
        use_normals: items carry the normals as ``x``.
        layout: ``"auto"`` or one of ``modelnet_off``, ``modelnet_normal``, ``modelnet_h5``.
        sampling: how point layouts are cut to ``num_points``: ``"first"`` rows (what
            PointNet/PointNet++ do; ``"auto"``), ``"random"`` or ``"fps"``.
        normalize: centre each cloud and scale it into the unit sphere.
        seed: seeds mesh sampling and random cuts (part of the cache key).
        cache_dir: where the cache goes (default ``<layout folder>/pcattn_cache``).
        transform: applied to each item (see :mod:`pcattn.data.transforms`).
        skip_bad: skip unreadable files (listed in ``skipped``, with a warning).
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
        options = dict(kind=self.layout.kind, version=1, variant=variant, split=split,
                       num_points=num_points, normalize=normalize, skip_bad=skip_bad,
                       sampling=None if self.layout.kind == "modelnet_off" else sampling,
                       seed=seed, files=fingerprint(f for f, _ in files))
        path = cache_file(self.layout.path, cache_dir, f"modelnet{variant}_{split}", options)
        desc = f"modelnet{variant} {split} ({self.layout.kind})"

        def build() -> dict:
            read = self._reader(num_points, sampling, normalize, seed)
            return read_all(files, read, Clouds(), skip_bad=skip_bad, progress=progress,
                            desc=desc).pack()

        self._load(path, options, build, split=split, use_normals=use_normals,
                   transform=transform, seed=seed)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _reader(self, num_points: int, sampling: str, normalize: bool, seed: int):
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
                "modelnet_h5": read_h5_entry}[kind]

    def _h5_label_map(self) -> np.ndarray:
        """h5 label (ModelNet40 order of the release) -> label of this variant, or -1."""
        if self.layout.kind != "modelnet_h5":
            return np.zeros(0, dtype=np.int64)
        f = self.layout.path / "shape_names.txt"
        names40 = _names_file(f) if f.is_file() else list(MODELNET40_CLASSES)
        return np.array([self.classes.index(n) if n in self.classes else -1 for n in names40])
