"""What the real datasets share: a packed in-memory store read from a cache, items as
``Data``, the cache's place and key, and the build loop that reports bad files."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch_geometric.data import Data
from tqdm import tqdm

from pcattn.data.cache import cache_key, load_or_build
from pcattn.data.errors import DataFormatError
from pcattn.data.layouts import CACHE_DIRNAME
from pcattn.data.options import SAMPLINGS


def downsample(xyz: np.ndarray, num: int, method: str, rng: np.random.Generator
               ) -> np.ndarray:
    """Indices of ``min(num, N)`` points: the first ones, a random subset, or FPS."""
    n = len(xyz)
    if n <= num:
        return np.arange(n)
    if method == "first":
        return np.arange(num)
    if method == "random":
        return np.sort(rng.choice(n, size=num, replace=False))
    if method == "fps":
        from pcattn.ops import farthest_point_sample

        return farthest_point_sample(torch.from_numpy(xyz).float(), num=num).numpy()
    raise ValueError(f"sampling must be one of {SAMPLINGS[1:]}, got {method!r}")


def fingerprint(paths: Iterable[Path]) -> str:
    """A hash of the names, sizes and modification times of the source files."""
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cache_file(data_dir: Path, cache_dir: str | os.PathLike | None, stem: str,
               options: dict) -> Path:
    """``<cache_dir or data_dir/pcattn_cache>/<stem>_<key>.pt``; checks it can be written."""
    folder = Path(cache_dir) if cache_dir else data_dir / CACHE_DIRNAME
    path = folder / f"{stem}_{cache_key(options)}.pt"
    if not path.exists():
        probe = folder if folder.exists() else folder.parent
        if not (probe.is_dir() and os.access(probe, os.W_OK)):
            raise PermissionError(f"cannot write the cache {path}: {probe} is not a writable "
                                  "folder; set data.cache_dir (or cache_dir=) to a writable folder")
    return path


class Clouds:
    """Accumulates clouds, then packs them: ``pos [T, 3]``, ``x [T, 3]`` or None, ``ptr``,
    ``label [S]``, ``seg [T]`` or None, ``names`` and the ``skipped`` files."""

    def __init__(self) -> None:
        self.pos, self.x, self.seg, self.label, self.names = [], [], [], [], []
        self.skipped: list[tuple[str, str]] = []

    def add(self, name: str, label: int, xyz: np.ndarray, normals: np.ndarray | None,
            seg: np.ndarray | None = None) -> None:
        self.names.append(name)
        self.label.append(label)
        self.pos.append(np.asarray(xyz, dtype=np.float32))
        self.x.append(None if normals is None else np.asarray(normals, dtype=np.float32))
        self.seg.append(seg)

    def pack(self) -> dict:
        sizes = [len(p) for p in self.pos]
        has_x = bool(self.x) and all(v is not None for v in self.x)
        has_seg = bool(self.seg) and all(s is not None for s in self.seg)
        cat = (lambda xs, d: torch.from_numpy(np.concatenate(xs)) if xs else  # noqa: E731
               torch.zeros((0, 3) if d == 2 else (0,)))
        return {
            "pos": cat(self.pos, 2).float(),
            "x": cat(self.x, 2).float() if has_x else None,
            "missing_x": [n for n, v in zip(self.names, self.x) if v is None],
            "seg": cat([s.astype(np.uint8) for s in self.seg], 1) if has_seg else None,
            "ptr": torch.tensor(np.concatenate([[0], np.cumsum(sizes)]), dtype=torch.long),
            "label": torch.tensor(self.label, dtype=torch.long),
            "names": list(self.names),
            "skipped": list(self.skipped),
        }


def read_all(entries: list, read: Callable, clouds: Clouds, *, skip_bad: bool,
             progress: bool, desc: str) -> Clouds:
    """``read(entry, clouds)`` for each entry; a bad file stops the build, or with
    ``skip_bad`` is recorded in ``clouds.skipped`` (path and reason)."""
    for entry in tqdm(entries, desc=desc, disable=not progress, unit="file"):
        try:
            read(entry, clouds)
        except DataFormatError as err:
            if not skip_bad:
                raise DataFormatError(f"{err}\n(fix or remove the file; or set data.skip_bad: "
                                      "true to skip unreadable files, which are then listed)"
                                      ) from None
            clouds.skipped.append((str(entry[0]), str(err)))
    return clouds


class CloudDataset(torch.utils.data.Dataset):
    """Clouds held packed in memory (from a cache); items are ``Data``.

    Classification items: ``Data(pos [N, 3], x [N, 3] normals or None, y [1])``.
    Segmentation items: ``Data(pos, x, y [N] part ids, category [1])``.
    ``resample`` (a transform) runs before ``transform``; where ``fixed_resampling`` is set
    (splits other than ``"train"``, and the training clouds held out as a val split) it is
    seeded by the item's index, so evaluation data does not change.
    """

    segmentation = False
    fixed_resampling = False

    def _load(self, path: Path, options: dict, build: Callable[[], dict], *,
              split: str, use_normals: bool, transform: Callable | None,
              resample: Callable | None = None, seed: int = 0) -> None:
        self.cache_path, self.split, self.seed = path, split, seed
        self.store = load_or_build(path, build, options=options)
        self.transform, self.resample = transform, resample
        self.fixed_resampling = split != "train"
        self.use_normals = use_normals
        if use_normals and self.store["x"] is None:
            missing = self.store["missing_x"]
            where = f" (e.g. {missing[0]}, {len(missing)} in all)" if missing else ""
            raise DataFormatError(f"{self.source}: these clouds have no normals{where}; set "
                                  "data.use_normals: false (use_normals=False)")
        if self.store["skipped"]:
            sk = self.store["skipped"]
            warnings.warn(f"{len(sk)} unreadable file(s) skipped (skip_bad): "
                          + "; ".join(f"{p}: {r.splitlines()[0]}" for p, r in sk[:3]))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) of each file left out by ``skip_bad``."""
        return list(self.store["skipped"])

    @property
    def names(self) -> list[str]:
        return list(self.store["names"])

    @property
    def labels(self) -> torch.Tensor:
        """Class (classification) or category (segmentation) of each cloud. Shape: [S]."""
        return self.store["label"]

    def __len__(self) -> int:
        return len(self.store["label"])

    def get(self, i: int) -> Data:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} clouds")
        i = i % len(self)
        s = self.store
        a, b = int(s["ptr"][i]), int(s["ptr"][i + 1])
        pos = s["pos"][a:b].clone()  # [N, 3]
        x = s["x"][a:b].clone() if self.use_normals else None  # [N, 3]
        label = s["label"][i:i + 1].clone()  # [1]
        if self.segmentation:
            return Data(pos=pos, x=x, y=s["seg"][a:b].long(), category=label)
        return Data(pos=pos, x=x, y=label)

    def __getitem__(self, i: int) -> Data:
        data = self.get(int(i))
        if self.resample is not None:
            gen = torch.Generator().manual_seed((self.seed * 1_000_003 + int(i)) % 2**63
                                                ) if self.fixed_resampling else None
            data = self.resample(data, gen)
        return self.transform(data) if self.transform is not None else data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.split!r}, {len(self)} clouds, from {self.source})"
