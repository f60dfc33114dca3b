"""Occupancy grids: the packed npz of many grids, ShapeNet's ``.binvox`` files, and points
sampled on the surface of the occupied voxels.

A grid is a boolean array ``[D0, D1, D2]`` indexed ``grid[x, y, z]``; voxel ``(i, j, k)`` fills
the cube ``[i, i+1] x [j, j+1] x [k, k+1]`` of voxel units. Its surface is the set of exposed
faces: a face of an occupied voxel whose neighbour across it is empty or outside the grid.
Points come out in the grid's axis order (x, y, z), unrotated. In the ModelNet10 grids of
the ``modelnet_voxels`` layout the third axis (z) is up, with the floor at low z (tables
have their top at high z, sofas and beds their seat at low z).

- Packed npz (layout ``modelnet_voxels``): ``occupancy_bits [S, ceil(D0*D1*D2/8)]`` uint8,
  each row ``np.packbits`` of one grid flattened in C order; ``label [S]`` into ``classes``;
  ``shape [3]`` = ``(D0, D1, D2)``. :func:`save_occupancy_npz` writes it.
- binvox: an ASCII header (``#binvox 1``, ``dim D D D``, ``translate tx ty tz``,
  ``scale s``, ``data``) then ``(value, count)`` byte pairs, run-length coding the grid
  flattened with y fastest, then z, then x (index ``x*D*D + z*D + y``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pcattn.data.errors import DataFormatError

# an occupied count below this is an (almost) empty grid, not a shape: fewer voxels than a
# 2x2x2 block
MIN_VOXELS = 8

# the exposed-face directions, in the order of the first axis of exposed_faces(): (axis, sign)
FACE_DIRECTIONS = ((0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1))


class OccupancyGrids(NamedTuple):
    """The arrays of a packed occupancy npz (grids stay packed until :func:`unpack_grid`)."""

    bits: np.ndarray  # [S, B] uint8
    label: np.ndarray  # [S] int64
    classes: list[str]
    shape: tuple[int, int, int]


def read_occupancy_npz(path: str | os.PathLike) -> OccupancyGrids:
    """The packed grids, labels, class names and grid shape of an occupancy npz, checked.

    Shape:
        -> bits [S, ceil(D0*D1*D2/8)] uint8, label [S] int64, classes (C names),
        shape (D0, D1, D2)
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataFormatError(f"{path}: not a readable npz file ({err})") from None
    with z:
        missing = [k for k in ("occupancy_bits", "label", "classes", "shape") if k not in z]
        if missing:
            raise DataFormatError(f"{path}: no {', '.join(repr(k) for k in missing)} array "
                                  f"(has {z.files}); an occupancy npz holds occupancy_bits "
                                  "[S, D^3/8] uint8, label [S], classes [C], shape [3]")
        bits, label = z["occupancy_bits"], z["label"]
        classes = [str(c) for c in z["classes"].reshape(-1)]
        shape = tuple(int(v) for v in z["shape"].reshape(-1))
    if len(shape) != 3 or min(shape) < 1:
        raise DataFormatError(f"{path}: 'shape' should be three positive sizes, got {shape}")
    nbytes = -(-int(np.prod(shape)) // 8)
    if bits.dtype != np.uint8 or bits.ndim != 2 or bits.shape[1] != nbytes:
        raise DataFormatError(f"{path}: 'occupancy_bits' should be [S, {nbytes}] uint8 for "
                              f"grids of shape {shape}, got {list(bits.shape)} {bits.dtype}")
    label = label.reshape(-1)
    if len(label) != len(bits) or not np.issubdtype(label.dtype, np.integer):
        raise DataFormatError(f"{path}: 'label' should be [{len(bits)}] integers, got "
                              f"{list(label.shape)} {label.dtype}")
    if len(label) and not (0 <= label.min() and label.max() < len(classes)):
        bad = int(np.nonzero((label < 0) | (label >= len(classes)))[0][0])
        raise DataFormatError(f"{path}: 'label'[{bad}] = {int(label[bad])} is outside the "
                              f"{len(classes)} classes")
    return OccupancyGrids(bits, label.astype(np.int64), classes, shape)  # type: ignore[arg-type]


def unpack_grid(row: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """One grid of a packed npz. Shape: row [B] uint8 -> [D0, D1, D2] bool"""
    n = int(np.prod(shape))
    return np.unpackbits(row, count=n).reshape(shape).astype(bool)


def save_occupancy_npz(path: str | os.PathLike, grids: np.ndarray, label: np.ndarray,
                       classes: list[str]) -> None:
    """Write grids in the packed npz layout that :func:`read_occupancy_npz` reads.

    Shape:
        grids [S, D0, D1, D2] bool, label [S] ->
    """
    grids = np.asarray(grids, dtype=bool)
    if grids.ndim != 4:
        raise ValueError(f"grids should be [S, D0, D1, D2], got {list(grids.shape)}")
    bits = np.packbits(grids.reshape(len(grids), -1), axis=1)  # [S, B]
    np.savez_compressed(path, occupancy_bits=bits, label=np.asarray(label, dtype=np.int64),
                        classes=np.array(classes), shape=np.array(grids.shape[1:]))


class Binvox(NamedTuple):
    """A binvox file: its grid indexed ``[x, y, z]`` and the map to model coordinates,
    ``model = translate + scale * p / D`` for a point ``p`` in voxel units."""

    grid: np.ndarray  # [D, D, D] bool
    translate: np.ndarray  # [3]
    scale: float


def read_binvox_file(path: str | os.PathLike) -> Binvox:
    """The grid of a ``.binvox`` file with its translation and scale.

    Shape:
        -> grid [D, D, D] bool indexed [x, y, z], translate [3]
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw.startswith(b"#binvox"):
        raise DataFormatError(f"{path}: not a binvox file: it should start with '#binvox 1', "
                              f"found {raw[:20]!r}")
    fields: dict[str, list[str]] = {}
    pos = raw.index(b"\n") + 1 if b"\n" in raw else len(raw)
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise DataFormatError(f"{path}: the binvox header has no 'data' line (truncated?)")
        line = raw[pos:end].decode("ascii", errors="replace").split()
        pos = end + 1
        if line and line[0] == "data":
            break
        if line:
            fields[line[0]] = line[1:]
    try:
        dims = [int(v) for v in fields["dim"]]
        translate = np.array([float(v) for v in fields.get("translate", ["0", "0", "0"])])
        scale = float(fields.get("scale", ["1"])[0])
    except (KeyError, ValueError, IndexError):
        raise DataFormatError(f"{path}: the binvox header needs 'dim D D D' (and numeric "
                              f"'translate tx ty tz', 'scale s'); found {fields}") from None
    if len(dims) != 3 or len(set(dims)) != 1 or dims[0] < 1 or translate.shape != (3,):
        raise DataFormatError(f"{path}: expected 'dim D D D' (a cubic grid) and three "
                              f"translate values, found dim {dims}, translate {list(translate)}")
    d = dims[0]
    runs = np.frombuffer(raw, dtype=np.uint8, offset=pos)  # [2R]
    if len(runs) % 2:
        raise DataFormatError(f"{path}: the voxel data ends inside a (value, count) pair "
                              "(truncated file?)")
    values, counts = runs[0::2], runs[1::2]  # [R], [R]
    total = int(counts.sum(dtype=np.int64))
    if total != d ** 3:
        raise DataFormatError(f"{path}: the runs cover {total} voxels, but dim {d} needs "
                              f"{d ** 3} (truncated or corrupt file?)")
    flat = np.repeat(values != 0, counts)  # [D^3], y fastest, then z, then x
    grid = flat.reshape(d, d, d).transpose(0, 2, 1)  # [x, z, y] -> [x, y, z]
    return Binvox(np.ascontiguousarray(grid), translate, scale)


def read_binvox(path: str | os.PathLike) -> np.ndarray:
    """The occupancy grid of a ``.binvox`` file, indexed ``[x, y, z]``.

    Shape:
        -> [D, D, D] bool
    """
    return read_binvox_file(path).grid


def exposed_faces(grid: np.ndarray) -> np.ndarray:
    """Which faces of each voxel are exposed, per direction of ``FACE_DIRECTIONS``.

    Shape:
        grid [D0, D1, D2] -> [6, D0, D1, D2] bool
    """
    g = np.asarray(grid, dtype=bool)
    p = np.pad(g, 1)  # [D0+2, D1+2, D2+2], empty outside
    c = slice(1, -1)
    neighbours = (p[2:, c, c], p[:-2, c, c], p[c, 2:, c], p[c, :-2, c],
                  p[c, c, 2:], p[c, c, :-2])  # each [D0, D1, D2]
    return np.stack([g & ~n for n in neighbours])  # [6, D0, D1, D2]


def surface_points(grid: np.ndarray, num_points: int, rng: np.random.Generator, *,
                   name: str = "grid", min_voxels: int = MIN_VOXELS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform by area on the exposed voxel faces, with each face's outward normal.

    Every face has the same area, so a face is drawn uniformly among the exposed ones
    (with replacement), then a point uniformly in its unit square. Coordinates are voxel
    units in the grid's axis order (x, y, z): voxel ``(i, j, k)`` fills
    ``[i, i+1] x [j, j+1] x [k, k+1]``.

    Args:
        grid: the occupancy grid.
        num_points: points to draw.
        rng: the generator drawing them.
        name: names the grid in errors (a file, or a file and an index).
        min_voxels: a grid with fewer occupied voxels is an error (an empty or almost empty
            grid is not a shape).

    Raises:
        DataFormatError: fewer than ``min_voxels`` occupied voxels.

    Shape:
        grid [D0, D1, D2] -> xyz [num_points, 3] float64, normals [num_points, 3] float64
    """
    faces = exposed_faces(grid)  # [6, D0, D1, D2]
    occupied = int(np.count_nonzero(grid))
    if occupied < max(min_voxels, 1):
        what = "empty" if occupied == 0 else f"almost empty ({occupied} occupied voxels)"
        raise DataFormatError(f"{name}: the occupancy grid is {what}; a shape needs at least "
                              f"{max(min_voxels, 1)} occupied voxels to sample its surface")
    flat = np.flatnonzero(faces)  # [F]
    pick = flat[rng.integers(len(flat), size=num_points)]  # [N]
    direction, i, j, k = np.unravel_index(pick, faces.shape)  # each [N]
    axis = np.array([a for a, _ in FACE_DIRECTIONS])[direction]  # [N]
    sign = np.array([s for _, s in FACE_DIRECTIONS], dtype=np.float64)[direction]  # [N]
    rows = np.arange(num_points)
    xyz = np.stack([i, j, k], axis=1).astype(np.float64)  # [N, 3] lower corners
    offset = rng.random((num_points, 3))  # [N, 3] uniform in the face's plane
    offset[rows, axis] = sign > 0  # the face's plane: the voxel's upper or lower side
    xyz += offset
    normals = np.zeros((num_points, 3))  # [N, 3]
    normals[rows, axis] = sign
    return xyz, normals


def voxel_cloud(path: str | os.PathLike, num_points: int, rng: np.random.Generator, *,
                min_voxels: int = MIN_VOXELS) -> tuple[np.ndarray, np.ndarray]:
    """Surface points of a ``.binvox`` file in its model's coordinates (its translate and
    scale applied), with the outward face normals.

    Shape:
        -> xyz [num_points, 3] float64, normals [num_points, 3] float64
    """
    vox = read_binvox_file(path)
    xyz, normals = surface_points(vox.grid, num_points, rng, name=str(path),
                                  min_voxels=min_voxels)
    scale = vox.scale / len(vox.grid)
    if scale <= 0 or not np.isfinite(scale):
        raise DataFormatError(f"{path}: the binvox scale should be positive, got {vox.scale}")
    return vox.translate + scale * xyz, normals
