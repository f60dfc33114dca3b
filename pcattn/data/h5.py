"""PointNet's HDF5 releases (ModelNet40 and ShapeNetPart): which files, and their arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcattn.data.errors import DataFormatError, DatasetNotFoundError


def h5_files(d: Path, split: str, list_stem: str) -> list[Path]:
    """The h5 files of ``split``: from ``<split>_<list_stem>.txt`` (names resolved in
    ``d``), else ``ply_data_<split>*.h5``."""
    listing = d / f"{split}_{list_stem}.txt"
    if listing.is_file():
        out = []
        for lineno, line in enumerate(listing.read_text().splitlines(), 1):
            if line.strip():
                f = d / Path(line.strip()).name
                if not f.is_file():
                    raise DatasetNotFoundError(f"{listing}, line {lineno} names {line.strip()!r} "
                                               f"but {f} does not exist")
                out.append(f)
        return out
    return sorted(d.glob(f"ply_data_{split}*.h5"))


def read_h5(path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """Arrays of ``keys`` (and of ``optional`` keys present) from an h5 file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        for k in keys:
            if k not in f:
                raise DataFormatError(f"{path}: no {k!r} dataset in this HDF5 file (it has "
                                      f"{sorted(f.keys())})")
        out = {k: np.asarray(f[k]) for k in keys + tuple(o for o in optional if o in f)}
    b = len(out[keys[0]])
    for k, v in out.items():
        if len(v) != b:
            raise DataFormatError(f"{path}: {k!r} has {len(v)} rows but {keys[0]!r} has {b}")
    if out["data"].ndim != 3 or out["data"].shape[2] != 3:
        raise DataFormatError(f"{path}: 'data' should be [B, N, 3], is {list(out['data'].shape)}")
    return out
