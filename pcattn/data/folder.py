"""Users' own classification data: one folder per class, any format ``read_cloud`` reads.

``root/<class>/**/<file>`` with the split taken from, in this order: a split file
(``root/split.json`` or ``split_file=``: ``{"train": ["chair/a.ply", ...], "test": [...]}``),
``root/<class>/{train,test}/`` subfolders, or a seeded per-class split of ``test_ratio``.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from pcattn.data.base import (Clouds, CloudDataset, SAMPLINGS, cache_file, downsample,
                              fingerprint, read_all)
from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.geometry import normalize_unit_sphere
from pcattn.data.io import CLOUD_SUFFIXES, read_cloud
from pcattn.data.layouts import CACHE_DIRNAME

SPLITS = ("train", "test")


def folder_classes(root: Path) -> list[str]:
    """Class names: the sub-folders of ``root`` that hold cloud files, sorted."""
    if root.exists() and not root.is_dir():
        raise DatasetNotFoundError(f"{root} is a file, not a folder: data.root names the "
                                   "folder that holds <root>/<class>/<file>; set it to "
                                   f"{root.parent} if the class folders are there")
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root} does not exist; the folder dataset expects "
                                   "<root>/<class>/<file> with files of types "
                                   f"{', '.join(CLOUD_SUFFIXES)}")
    out = sorted(c.name for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")
                 and c.name != CACHE_DIRNAME and _clouds_in(c))
    if not out:
        raise DatasetNotFoundError(f"{root} has no class folders with cloud files; expected "
                                   f"<root>/<class>/<file> ({', '.join(CLOUD_SUFFIXES)})")
    return out


def _clouds_in(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in CLOUD_SUFFIXES and p.is_file())


def list_files(root: Path, split: str, *, split_file: str | os.PathLike | None = None,
               test_ratio: float = 0.2, seed: int = 0) -> tuple[list[tuple[Path, int]], str]:
    """(file, label) of each cloud of ``split``, and how the split was decided."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    classes = folder_classes(root)
    sf = Path(split_file) if split_file else root / "split.json"
    if split_file and not sf.is_file():
        raise DatasetNotFoundError(f"split file {sf} does not exist")
    if sf.is_file():
        return _from_split_file(root, sf, split, classes), f"split file {sf.name}"
    per_class = {c: _clouds_in(root / c) for c in classes}
    if any((root / c / s).is_dir() for c in classes for s in SPLITS):
        return ([(f, i) for i, c in enumerate(classes)
                 for f in _clouds_in(root / c / split)], "<class>/{train,test} folders")
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    out = []
    for i, c in enumerate(classes):
        files = per_class[c]
        rng = np.random.default_rng([seed, zlib.crc32(c.encode())])
        order = rng.permutation(len(files))
        n_test = int(round(test_ratio * len(files))) if len(files) > 1 else 0
        chosen = order[:n_test] if split == "test" else order[n_test:]
        out += [(files[j], i) for j in sorted(chosen)]
    return out, f"seeded split (test_ratio={test_ratio}, seed={seed})"


def _from_split_file(root: Path, sf: Path, split: str, classes: list[str]):
    try:
        table = json.loads(sf.read_text())
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{sf}: not valid JSON ({err})") from None
    if not isinstance(table, dict) or split not in table:
        raise DataFormatError(f"{sf}: expected an object with a {split!r} key holding a list "
                              "of paths relative to the root, e.g. \"chair/a.ply\"")
    out = []
    for k, rel in enumerate(table[split]):
        f = root / rel
        cls = Path(rel).parts[0]
        if cls not in classes:
            raise DataFormatError(f"{sf}, {split}[{k}]: {rel!r} is not under a class folder "
                                  f"({', '.join(classes)})")
        if not f.is_file():
            raise DatasetNotFoundError(f"{sf}, {split}[{k}] names {rel!r} but {f} does not exist")
        out.append((f, classes.index(cls)))
    return out


class FolderDataset(CloudDataset):
    """Classification over ``root/<class>/<files>``, cached once.

    Args:
        root: the folder of class folders.
        split: ``"train"`` or ``"test"``.
        num_points: meshes are sampled to this many points; larger clouds are cut to it
            (``sampling``: ``"fps"`` by default, or ``"random"``/``"first"``); smaller clouds
            are kept whole.
        split_file: a json split (default ``root/split.json`` if present).
        test_ratio: the test fraction of each class when there is no split file/folders.
        skip_bad: skip unreadable files instead of stopping (they are listed in
            ``skipped``, with a warning).
        use_normals, normalize, seed, cache_dir, transform, progress: as for ModelNet.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 num_points: int = 1024, use_normals: bool = True, sampling: str = "auto",
                 split_file: str | os.PathLike | None = None, test_ratio: float = 0.2,
                 normalize: bool = True, seed: int = 0, skip_bad: bool = False,
                 cache_dir: str | os.PathLike | None = None, transform: Callable | None = None,
                 progress: bool = False) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        sampling = "fps" if sampling == "auto" else sampling
        root = Path(root)
        self.source = root
        self.classes = folder_classes(root)
        files, self.split_rule = list_files(root, split, split_file=split_file,
                                            test_ratio=test_ratio, seed=seed)
        if not files:
            raise DatasetNotFoundError(f"{root}: no {split} clouds ({self.split_rule})")
        options = dict(kind="folder", version=1, split=split, classes=self.classes,
                       num_points=num_points, sampling=sampling, normalize=normalize,
                       seed=seed, skip_bad=skip_bad, rule=self.split_rule,
                       files=fingerprint(f for f, _ in files),
                       names=[str(f.relative_to(root)) for f, _ in files])
        path = cache_file(root, cache_dir, f"folder_{split}", options)

        def read(entry, clouds):
            f, label = entry
            rel = str(f.relative_to(root)).replace(os.sep, "/")
            r_seed = [seed, zlib.crc32(rel.encode())]
            try:
                data = read_cloud(f, num_points=num_points, seed=r_seed)
            except (OSError, RuntimeError) as err:
                raise DataFormatError(f"{f}: could not be read ({err})") from None
            xyz = data.pos.double().numpy()
            nrm = None if data.x is None else data.x.numpy()
            if nrm is not None and nrm.shape[1] != 3:
                raise DataFormatError(f"{f}: rows of {3 + nrm.shape[1]} columns; a folder "
                                      "dataset reads 'x y z' or 'x y z nx ny nz' rows")
            keep = downsample(xyz, num_points, sampling, np.random.default_rng(r_seed))
            xyz, nrm = xyz[keep], None if nrm is None else nrm[keep]
            clouds.add(rel, label, normalize_unit_sphere(xyz) if normalize else xyz, nrm)

        def build() -> dict:
            return read_all(files, read, Clouds(), skip_bad=skip_bad, progress=progress,
                            desc=f"folder {split}").pack()

        self._load(path, options, build, split=split, use_normals=use_normals,
                   transform=transform, seed=seed)

    @property
    def num_classes(self) -> int:
        return len(self.classes)
