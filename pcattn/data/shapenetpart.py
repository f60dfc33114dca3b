"""ShapeNetPart part segmentation (16 categories, 50 parts), in its two usual layouts.

- ``shapenetpart_normal``: PointNet++'s ``shapenetcore_partanno_segmentation_benchmark_v0_
  normal`` (``<synset>/<id>.txt`` rows ``x y z nx ny nz part``, the official json splits);
- ``shapenetpart_h5``: PointNet's ``hdf5_data`` (``data``, ``label`` = category, ``pid``).

Part ids are global (0-49, ``SHAPENETPART_PARTS``); ``y`` holds them, ``category`` the
category index in ``SHAPENETPART_CATEGORIES`` order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from pcattn.data.base import (Clouds, CloudDataset, cache_file, fingerprint,
                              read_all)
from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.geometry import normalize_unit_sphere
from pcattn.data.io import read_rows
from pcattn.data.layouts import SHAPENETPART_KINDS, Layout, choose_layout
from pcattn.data.h5 import h5_files, read_h5
from pcattn.data.transforms import Resample

# category -> synset id (synsetoffset2category.txt), in label order
SHAPENETPART_CATEGORIES = {
    "Airplane": "02691156", "Bag": "02773838", "Cap": "02954340", "Car": "02958343",
    "Chair": "03001627", "Earphone": "03261776", "Guitar": "03467517", "Knife": "03624134",
    "Lamp": "03636649", "Laptop": "03642806", "Motorbike": "03790369", "Mug": "03797390",
    "Pistol": "03948459", "Rocket": "04099429", "Skateboard": "04225943", "Table": "04379243",
}
_SIZES = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)
# category -> its global part ids (the table the metrics use for per-category mIoU)
SHAPENETPART_PARTS: dict[str, tuple[int, ...]] = {
    c: tuple(range(sum(_SIZES[:i]), sum(_SIZES[:i + 1])))
    for i, c in enumerate(SHAPENETPART_CATEGORIES)}
NUM_PARTS = sum(_SIZES)
SPLITS = ("train", "val", "test", "trainval")


def part_to_category() -> torch.Tensor:
    """Category index of each global part id. Shape: [50]."""
    return torch.tensor([i for i, parts in enumerate(SHAPENETPART_PARTS.values())
                         for _ in parts])


def category_part_mask() -> torch.Tensor:
    """``mask[c, p]`` is True where part ``p`` belongs to category ``c``. Shape: [16, 50]."""
    return part_to_category()[None, :] == torch.arange(len(SHAPENETPART_CATEGORIES))[:, None]


def _select(categories: Sequence[str] | None) -> list[str]:
    if not categories:
        return list(SHAPENETPART_CATEGORIES)
    lookup = {c.lower(): c for c in SHAPENETPART_CATEGORIES}
    lookup.update({s: c for c, s in SHAPENETPART_CATEGORIES.items()})
    out = []
    for c in categories:
        if str(c).lower() not in lookup:
            raise ValueError(f"unknown ShapeNetPart category {c!r}; categories: "
                             f"{list(SHAPENETPART_CATEGORIES)} (or their synset ids)")
        out.append(lookup[str(c).lower()])
    return out


def _synset_names(d: Path) -> dict[str, str]:
    """synset -> category from ``synsetoffset2category.txt``, checked against the table."""
    f = d / "synsetoffset2category.txt"
    out = {}
    for lineno, line in enumerate(f.read_text().splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 2 or SHAPENETPART_CATEGORIES.get(tok[0]) != tok[1]:
            raise DataFormatError(f"{f}, line {lineno}: expected '<Category> <synset>' of the "
                                  f"standard 16 categories, found {line.strip()!r}")
        out[tok[1]] = tok[0]
    return out


def list_files(layout: Layout, split: str, categories: Sequence[str] | None = None
               ) -> list[tuple[Path, int]]:
    """(file, category index) of each shape of ``split`` (for h5: each file, -1)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    parts = ("train", "val") if split == "trainval" else (split,)
    if layout.kind == "shapenetpart_h5":
        return [(f, -1) for s in parts for f in h5_files(layout.path, s, "hdf5_file_list")]
    keep = set(_select(categories))
    names = _synset_names(layout.path)
    order = list(SHAPENETPART_CATEGORIES)
    out = []
    for s in parts:
        listing = layout.path / "train_test_split" / f"shuffled_{s}_file_list.json"
        if not listing.is_file():
            raise DatasetNotFoundError(f"{listing} is missing: the official {s} split of "
                                       "ShapeNetPart (a json list of 'shape_data/<synset>/<id>')")
        try:
            entries = json.loads(listing.read_text())
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{listing}: not valid JSON ({err})") from None
        for k, entry in enumerate(entries):
            synset, shape = str(entry).split("/")[-2:]
            if synset not in names:
                raise DataFormatError(f"{listing}, entry {k}: synset {synset!r} is not in "
                                      "synsetoffset2category.txt")
            if names[synset] not in keep:
                continue
            f = layout.path / synset / f"{shape}.txt"
            if not f.is_file():
                raise DatasetNotFoundError(f"{listing}, entry {k} names {entry!r} but {f} does "
                                           "not exist; copy it there")
            out.append((f, order.index(names[synset])))
    return out


class ShapeNetPart(CloudDataset):
    """ShapeNetPart from ``root`` (layout auto-detected), cached once, whole clouds.

    Args:
        root: folder holding a layout (searched to depth 2), e.g. ``data/shapenetpart``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"trainval"``.
        num_points: each item is resampled to this many points (random, with repeats for
            smaller shapes; seeded by index on splits other than train); ``None``: whole.
        use_normals: items carry the normals as ``x`` (the txt layout has them).
        categories: keep only these categories (names or synset ids); part ids stay global.
        layout, normalize, seed, cache_dir, transform, skip_bad, progress: as for
            :class:`~pcattn.data.modelnet.ModelNet`.
    """

    segmentation = True
    categories = tuple(SHAPENETPART_CATEGORIES)
    parts = SHAPENETPART_PARTS

    def __init__(self, root: str | os.PathLike = "data/shapenetpart", split: str = "trainval",
                 *, num_points: int | None = 2048, use_normals: bool = True,
                 categories: Sequence[str] | None = None, layout: str = "auto",
                 normalize: bool = True, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, transform: Callable | None = None,
                 skip_bad: bool = False, progress: bool = False) -> None:
        self.layout = choose_layout(root, SHAPENETPART_KINDS, layout=layout)
        self.source = self.layout.path
        self.selected = _select(categories)
        files = list_files(self.layout, split, self.selected)
        if not files:
            raise DatasetNotFoundError(f"{self.layout.path}: no {split} shapes found in the "
                                       f"{self.layout.kind} layout")
        options = dict(kind=self.layout.kind, version=1, split=split, normalize=normalize,
                       categories=sorted(self.selected), skip_bad=skip_bad,
                       files=fingerprint(f for f, _ in files))
        path = cache_file(self.layout.path, cache_dir, f"shapenetpart_{split}", options)
        read = self._read_txt if self.layout.kind == "shapenetpart_normal" else self._read_h5

        def build() -> dict:
            self._normalize = normalize
            return read_all(files, read, Clouds(), skip_bad=skip_bad, progress=progress,
                            desc=f"shapenetpart {split} ({self.layout.kind})").pack()

        resample = None if num_points is None else Resample(num_points, generator=seed)
        self._load(path, options, build, split=split, use_normals=use_normals,
                   transform=transform, resample=resample, seed=seed)

    @property
    def num_classes(self) -> int:
        """Number of part labels (50)."""
        return NUM_PARTS

    @property
    def num_categories(self) -> int:
        return len(SHAPENETPART_CATEGORIES)

    @property
    def part_mask(self) -> torch.Tensor:
        """``[16, 50]`` bool: True where a part belongs to a category (all 16 categories,
        whichever are selected, since part ids stay global)."""
        return category_part_mask()

    def _add(self, clouds, name, cat, xyz, nrm, seg, where):
        allowed = SHAPENETPART_PARTS[self.categories[cat]]
        bad = np.nonzero((seg < allowed[0]) | (seg > allowed[-1]))[0]
        if len(bad):
            raise DataFormatError(f"{where}: row {int(bad[0]) + 1} has part {int(seg[bad[0]])}, "
                                  f"not a part of {self.categories[cat]} {list(allowed)}")
        if self._normalize:
            xyz = normalize_unit_sphere(xyz)
        clouds.add(name, cat, xyz, nrm, seg)

    def _read_txt(self, entry, clouds):
        path, cat = entry
        rows = read_rows(path, min_columns=7)
        seg = rows[:, 6].astype(np.int64)
        self._add(clouds, str(path.relative_to(self.layout.path)), cat, rows[:, :3],
                  rows[:, 3:6], seg, path)

    def _read_h5(self, entry, clouds):
        path, _ = entry
        a = read_h5(path, ("data", "label", "pid"), ("normal",))
        cats = a["label"].reshape(len(a["label"]), -1)[:, 0].astype(np.int64)
        keep = {self.categories.index(c) for c in self.selected}
        for i, cat in enumerate(cats):
            if not 0 <= cat < len(self.categories):
                raise DataFormatError(f"{path}: 'label'[{i}] = {cat} is not one of the 16 "
                                      "category indices")
            if cat not in keep:
                continue
            nrm = a["normal"][i] if "normal" in a else None
            self._add(clouds, f"{path.name}[{i}]", int(cat), a["data"][i].astype(np.float64),
                      nrm, a["pid"][i].astype(np.int64), f"{path}['pid'][{i}]")
