"""Reading single clouds and meshes: OFF (robust), PLY (strict), text rows, open3d's formats.

``read_cloud`` is the entry point for users' own files. Meshes (.off, .obj, .stl and .ply
with faces) are sampled uniformly by surface area, with the face normals. Text formats
(.txt, .xyz, .xyzn, .pts) are parsed here rather than by open3d, because open3d skips bad
rows silently, and PLY is read with ``plyfile``, which checks the data against the header
(open3d's reader returns the rows a truncated file promises, filled with junk); every error
here names the file and the line, or the element and row.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from pcattn.data.errors import DataFormatError
from pcattn.data.geometry import sample_surface

CLOUD_SUFFIXES = (".ply", ".pcd", ".xyz", ".xyzn", ".pts", ".txt", ".off", ".obj", ".stl",
                  ".binvox")


def _content_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, text) of each non-blank line, comments (``#``) removed."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if line:
                out.append((i, line))
    return out


def read_off(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of an OFF mesh; polygons are split into triangle fans.

    Accepts the header on its own line (``OFF`` then ``V F E``) and the broken header of
    some ModelNet files where the counts follow on the same line (``OFF490 518 0``).

    Shape:
        -> vertices [V, 3] float64, faces [F, 3] int64
    """
    path = Path(path)
    lines = _content_lines(path)
    if not lines or not lines[0][1].upper().startswith("OFF"):
        got = repr(lines[0][1][:40]) if lines else "an empty file"
        raise DataFormatError(f"{path}: not an OFF file: line 1 should start with 'OFF', "
                              f"found {got}")
    rest = lines[0][1][3:].strip()
    if rest:  # counts on the OFF line
        counts_line, body = lines[0], lines[1:]
        counts = rest.split()
    elif len(lines) > 1:
        counts_line, body = lines[1], lines[2:]
        counts = counts_line[1].split()
    else:
        raise DataFormatError(f"{path}: OFF header has no vertex/face counts (truncated?)")
    try:
        nv, nf = int(counts[0]), int(counts[1])
    except (IndexError, ValueError):
        raise DataFormatError(f"{path}, line {counts_line[0]}: expected the counts "
                              f"'<vertices> <faces> <edges>', found {counts_line[1]!r}") from None
    if len(body) < nv:
        raise DataFormatError(f"{path}: the header (line {counts_line[0]}) promises {nv} "
                              f"vertices but only {len(body)} lines follow (truncated file?)")
    if len(body) < nv + nf:
        raise DataFormatError(f"{path}: the header (line {counts_line[0]}) promises {nf} faces "
                              f"but only {len(body) - nv} face lines follow (truncated file?)")
    vertices = _vertex_rows(path, body[:nv])
    faces = _face_rows(path, body[nv:nv + nf], nv)
    return vertices, faces


def _vertex_rows(path: Path, rows: list[tuple[int, str]]) -> np.ndarray:
    try:  # fast path: exactly three numbers per line
        flat = np.array(" ".join(t for _, t in rows).split(), dtype=np.float64)
        if flat.size == 3 * len(rows):
            return flat.reshape(-1, 3)
    except ValueError:
        pass
    out = np.empty((len(rows), 3))
    for j, (lineno, text) in enumerate(rows):
        try:
            out[j] = [float(v) for v in text.split()[:3]]
        except ValueError:
            raise DataFormatError(f"{path}, line {lineno}: expected a vertex 'x y z', found "
                                  f"{text[:60]!r}") from None
    return out


def _face_rows(path: Path, rows: list[tuple[int, str]], nv: int) -> np.ndarray:
    faces: np.ndarray | None = None
    try:  # fast path: all triangles, no colours
        flat = np.array(" ".join(t for _, t in rows).split(), dtype=np.int64)
        if flat.size == 4 * len(rows) and (flat[::4] == 3).all():
            faces = flat.reshape(-1, 4)[:, 1:]
    except ValueError:
        pass
    if faces is None:
        tris = []
        for lineno, text in rows:
            tok = text.split()
            try:
                n = int(tok[0])
                idx = [int(v) for v in tok[1:1 + n]]
            except ValueError:
                idx, n = [], -1
            if n < 3 or len(idx) != n:
                raise DataFormatError(f"{path}, line {lineno}: expected a face 'n i1 ... in' "
                                      f"with n >= 3, found {text[:60]!r}")
            tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, n - 1))
        faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        bad = int(np.nonzero((faces < 0).any(1) | (faces >= nv).any(1))[0][0])
        raise DataFormatError(f"{path}: a face refers to vertex {int(faces[bad].max())} but the "
                              f"file has {nv} vertices (face {bad}, corrupt file?)")
    return faces


def read_rows(path: str | os.PathLike, *, min_columns: int = 3, skip_count_line: bool = False
              ) -> np.ndarray:
    """Numeric rows of a text file, separated by commas or whitespace.

    Every row must have the same number of columns, at least ``min_columns``.
    ``skip_count_line`` drops a first line holding a single integer (the .pts count).

    Shape:
        -> [N, C] float64
    """
    path = Path(path)
    fast = _whitespace_rows(path)
    if fast is not None and fast.shape[1] >= min_columns and not (
            skip_count_line and fast.shape[1] == 1):
        return fast
    lines = _content_lines(path)
    if skip_count_line and lines and len(lines[0][1].split()) == 1:
        lines = lines[1:]
    if not lines:
        raise DataFormatError(f"{path}: no rows of numbers found (empty file?)")
    toks = [t.replace(",", " ").split() for _, t in lines]
    ncol = Counter(len(t) for t in toks).most_common(1)[0][0]  # the file's usual width
    want = max(ncol, min_columns)
    for (lineno, text), tok in zip(lines, toks):
        if len(tok) != want:
            raise DataFormatError(f"{path}, line {lineno}: expected {want} columns, found "
                                  f"{len(tok)}: {text[:60]!r}")
    try:
        return np.array(toks, dtype=np.float64)
    except ValueError:
        for (lineno, text), tok in zip(lines, toks):
            try:
                [float(v) for v in tok]
            except ValueError:
                raise DataFormatError(f"{path}, line {lineno}: not a row of numbers: "
                                      f"{text[:60]!r}") from None
        raise


def _whitespace_rows(path: Path) -> np.ndarray | None:
    """The common case of :func:`read_rows` by numpy's C parser (a million rows in about a
    second instead of many): whitespace-separated rows of one width. None for anything else
    (commas, a count line, ragged rows, no rows), which the line-by-line path reads or names."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the slow path says it
            rows = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2, encoding="utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return rows if rows.size else None


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Vertices, their normals (if the file has ``nx ny nz``) and triangles of a PLY file.

    Strict: a file that ends before the rows its header promises is an error naming the
    element and the row. Polygons are split into triangle fans.

    Shape:
        -> vertices [V, 3] float64, normals [V, 3] float64 or None, faces [F, 3] int64
    """
    from plyfile import PlyData, PlyElementParseError, PlyParseError

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
    except PlyElementParseError as err:
        where = "the data"
        if err.element is not None:
            where = f"element {err.element.name!r}"
            if err.row is not None:
                where += f" ends at row {err.row} of {err.element.count}"
        if err.prop is not None:
            where += f", property {err.prop.name!r}"
        raise DataFormatError(f"{path}: {where}: {err.message} (truncated or corrupt: the "
                              "file holds less than its header promises)") from None
    except (PlyParseError, ValueError, EOFError) as err:  # malformed headers
        raise DataFormatError(f"{path}: not a readable PLY file ({err})") from None
    names = [e.name for e in ply.elements]
    if "vertex" not in names:
        raise DataFormatError(f"{path}: the PLY file has no 'vertex' element (found {names})")
    vert = ply["vertex"].data
    fields = vert.dtype.names or ()
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise DataFormatError(f"{path}: the vertex element has no {', '.join(missing)} "
                              f"propert{'y' if len(missing) == 1 else 'ies'} (has {fields})")
    xyz = np.stack([vert[c].astype(np.float64) for c in "xyz"], axis=1)  # [V, 3]
    normals = (np.stack([vert[c].astype(np.float64) for c in ("nx", "ny", "nz")], axis=1)
               if all(c in fields for c in ("nx", "ny", "nz")) else None)
    faces = np.zeros((0, 3), dtype=np.int64)
    if "face" in names and ply["face"].count:
        face = ply["face"].data
        key = next((k for k in ("vertex_indices", "vertex_index") if k in face.dtype.names),
                   None)
        if key is None:
            raise DataFormatError(f"{path}: the face element has no vertex_indices list "
                                  f"(has {face.dtype.names})")
        faces = _fans(path, list(face[key]), len(xyz))
    return xyz, normals, faces


def _fans(path: Path, polygons: list, nv: int) -> np.ndarray:
    """Triangle fans of a list of index arrays. Shape: -> [F, 3]"""
    sizes = np.array([len(p) for p in polygons])
    if (sizes < 3).any():
        bad = int(np.nonzero(sizes < 3)[0][0])
        raise DataFormatError(f"{path}: face {bad} has {sizes[bad]} vertices (needs >= 3)")
    if (sizes == 3).all():
        faces = np.stack(polygons).astype(np.int64)
    else:
        faces = np.array([(p[0], p[j], p[j + 1]) for p in polygons for j in range(1, len(p) - 1)],
                         dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        raise DataFormatError(f"{path}: a face refers to vertex {int(faces.max())} (or "
                              f"{int(faces.min())}) but the file has {nv} vertices (corrupt?)")
    return faces


def _open3d_mesh(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    import open3d as o3d

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh = o3d.io.read_triangle_mesh(str(path))
    if len(mesh.triangles) == 0:
        return None
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles).astype(np.int64)


def _open3d_cloud(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import open3d as o3d

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        pcd = o3d.io.read_point_cloud(str(path))
    if len(pcd.points) == 0:
        raise DataFormatError(f"{path}: open3d read no points from it (corrupt or not a "
                              f"{path.suffix} point cloud?)")
    return np.asarray(pcd.points), np.asarray(pcd.normals) if pcd.has_normals() else None


def read_cloud(path: str | os.PathLike, *, num_points: int = 2048,
               seed: int | list[int] = 0) -> Data:
    """One point cloud from a file, as ``Data(pos, x)`` with ``x`` the normals or ``None``.

    Clouds (.ply, .pcd, .xyz, .xyzn, .pts, .txt) are returned whole. Text rows (commas or
    spaces, the same count in every row) are read by their number of columns: 3 is
    ``x y z`` (``x`` is None); 6 is ``x y z nx ny nz`` (``x`` holds the normals); any other
    count ``3 + F`` is ``x y z`` and ``F`` features, all kept in ``x``; fewer than 3 is an
    error naming the count. Meshes (.off, .obj, .stl, or a .ply with faces) are sampled:
    ``num_points`` points by surface area, with face normals, seeded by ``seed``; so are
    the exposed voxel faces of a .binvox occupancy grid (in the model's coordinates: its
    translate and scale applied; see :mod:`pcattn.data.voxels`). NaN or
    infinite values (also float64 values beyond float32's range) are an error.

    Shape:
        -> pos [N, 3] float32, x [N, 3] (normals) or [N, F] (features) float32, or None
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give one cloud or mesh file in it "
                                f"({', '.join(CLOUD_SUFFIXES)})")
    if suffix not in CLOUD_SUFFIXES:
        raise DataFormatError(f"{path}: unsupported file type {suffix!r}; supported: "
                              f"{', '.join(CLOUD_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    normals = None
    mesh = None
    if suffix == ".off":
        vertices, faces = read_off(path)
        mesh = (vertices, faces) if len(faces) else None
        xyz = vertices
    elif suffix == ".ply":
        xyz, normals, faces = read_ply(path)
        mesh = (xyz, faces) if len(faces) else None
        if not len(xyz):
            raise DataFormatError(f"{path}: the PLY file has no vertices")
    elif suffix in (".obj", ".stl"):
        mesh = _open3d_mesh(path)
        if mesh is None:
            raise DataFormatError(f"{path}: open3d read no triangles from it (corrupt?)")
    elif suffix == ".pcd":
        xyz, normals = _open3d_cloud(path)
    elif suffix == ".binvox":
        from pcattn.data.voxels import voxel_cloud

        xyz, normals = voxel_cloud(path, num_points, np.random.default_rng(seed))
    else:
        rows = read_rows(path, skip_count_line=suffix == ".pts")
        xyz = rows[:, :3]
        normals = rows[:, 3:] if rows.shape[1] > 3 else None  # normals (6 columns) or features
    if mesh is not None:
        check_finite(path, mesh[0], "vertex coordinates")
        xyz, normals, _ = sample_surface(*mesh, num_points, np.random.default_rng(seed),
                                         name=str(path))
    with np.errstate(over="ignore"):  # an overflow becomes inf, which check_finite names
        pos = np.ascontiguousarray(xyz, dtype=np.float32)
        x = None if normals is None else np.ascontiguousarray(normals, dtype=np.float32)
    check_finite(path, pos, "coordinates")
    if x is not None:
        check_finite(path, x, "normals or features")
    return Data(pos=torch.from_numpy(pos), x=None if x is None else torch.from_numpy(x))


def check_finite(path: Path, values: np.ndarray, what: str) -> np.ndarray:
    """``values`` unchanged, or a DataFormatError naming the first NaN / inf and its row.

    Run it after the cast to float32: a float64 value beyond float32's range becomes inf.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        value = values[row, col]
        kind = "NaN" if np.isnan(value) else ("inf (beyond float32's range?)" if
                                              np.isinf(value) else repr(value))
        raise DataFormatError(f"{path}: {what} hold {kind} (row {row}, column {col}; "
                              f"{int(bad.any(1).sum())} bad rows in all)")
    return values
