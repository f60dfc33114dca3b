"""Meshes as graphs: nodes are a mesh's vertices, edges its triangle edges.

``read_mesh_graph`` turns one mesh file into ``Data(pos, x, edge_index)``;
:class:`ModelNetMeshGraphs` does it for the ModelNet OFF layout, so that a graph model
(``gat_cls``) trains on the meshes' own connectivity through the same engine
(``data.graph: mesh``).

ModelNet's CAD meshes repeat vertices: the same corner is stored once per face that uses it
(the test sofa has 384 vertices at 60 distinct positions), which would cut the mesh into
separate triangles. ``weld=True`` (the default) merges vertices with identical coordinates
and drops vertices no face uses, before the edges are read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data
from tqdm import tqdm

from pcattn.data.base import CloudDataset, cache_file, fingerprint
from pcattn.data.geometry import normalize_unit_sphere
from pcattn.data.errors import DataFormatError, DatasetNotFoundError
from pcattn.data.io import read_off
from pcattn.data.layouts import choose_layout
from pcattn.data.modelnet import list_files, modelnet_classes


def weld_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with identical coordinates and drop the ones no face uses.

    Shape:
        vertices: [V, 3], faces: [F, 3] -> vertices [V', 3], faces [F, 3] (re-indexed)
    """
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]  # [F, 3] into unique
    used, faces = np.unique(faces, return_inverse=True)
    return unique[used], faces.reshape(-1, 3)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """The undirected edges of a triangle mesh, each once per direction, without self loops
    (a degenerate triangle adds only its real edges), sorted by (source, target).

    Shape:
        faces: [F, 3] -> edge_index [2, E], E = twice the number of distinct edges
    """
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # [3F, 2]
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    both = np.concatenate([pairs, pairs[:, ::-1]])  # [6F', 2]
    return np.unique(both, axis=0).T.astype(np.int64)  # [2, E]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted mean of the normals of the faces at each vertex, unit length (zero
    where the faces at a vertex have no area).

    Shape:
        vertices: [V, 3], faces: [F, 3] -> [V, 3]
    """
    tri = vertices[faces]  # [F, 3, 3]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # [F, 3], |.| = 2 area
    out = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(out, faces[:, corner], cross)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)


def mesh_to_graph(vertices: np.ndarray, faces: np.ndarray, *, weld: bool = True,
                  normalize: bool = True) -> Data:
    """``Data(pos [V, 3], x [V, 3] vertex normals, edge_index [2, E])`` of a triangle mesh;
    ``normalize`` centres the vertices and scales them into the unit sphere."""
    if weld:
        vertices, faces = weld_vertices(vertices, faces)
    normals = vertex_normals(vertices, faces)
    pos = normalize_unit_sphere(vertices) if normalize else vertices
    return Data(pos=torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float32)),
                x=torch.from_numpy(np.ascontiguousarray(normals, dtype=np.float32)),
                edge_index=torch.from_numpy(mesh_edges(faces)))


def read_mesh_graph(path: str | os.PathLike, *, weld: bool = True, normalize: bool = True
                    ) -> Data:
    """An OFF mesh as a graph over its vertices and edges (see :func:`mesh_to_graph`)."""
    vertices, faces = read_off(path)
    if len(faces) == 0:
        raise DataFormatError(f"{path}: the mesh has no faces, so no edges to make a graph of")
    if not np.isfinite(vertices).all():
        raise DataFormatError(f"{path}: contains NaN or infinite coordinates")
    return mesh_to_graph(vertices, faces, weld=weld, normalize=normalize)


class ModelNetMeshGraphs(CloudDataset):
    """ModelNet40 / ModelNet10 meshes (the ``modelnet_off`` layout) as graphs, cached once.

    Items are ``Data(pos [V, 3], x [V, 3] vertex normals or None, edge_index [2, E], y [1])``
    with ``V`` the (welded) vertices of the mesh: every mesh keeps its own size, and the
    loader batches them like any graphs (``edge_index`` offset per graph).

    Args:
        root: folder holding the OFF layout (searched to depth 2).
        split: ``"train"`` or ``"test"``.
        variant: 40 or 10.
        use_normals: items carry the vertex normals as ``x``.
        weld: merge vertices with identical coordinates (see the module docstring).
        normalize: centre each mesh and scale it into the unit sphere.
        cache_dir, transform, skip_bad, progress: as for :class:`~pcattn.data.ModelNet`.
    """

    def __init__(self, root: str | os.PathLike = "data/modelnet40", split: str = "train", *,
                 variant: int = 40, use_normals: bool = True, weld: bool = True,
                 normalize: bool = True, cache_dir: str | os.PathLike | None = None,
                 transform: Callable | None = None, skip_bad: bool = False,
                 progress: bool = False) -> None:
        if variant not in (10, 40):
            raise ValueError(f"variant must be 40 or 10, got {variant}")
        self.layout = choose_layout(root, ("modelnet_off",), prefer=str(variant))
        self.source, self.variant = self.layout.path, variant
        self.classes = modelnet_classes(self.layout, variant)
        files = list_files(self.layout, split, variant)
        if not files:
            raise DatasetNotFoundError(f"{self.layout.path}: no {split} meshes found in the "
                                       "modelnet_off layout")
        options = dict(kind="modelnet_mesh_graph", version=1, variant=variant, split=split,
                       weld=weld, normalize=normalize, skip_bad=skip_bad,
                       files=fingerprint(f for f, _ in files))
        path = cache_file(self.layout.path, cache_dir, f"modelnet{variant}_{split}_mesh",
                          options)

        def build() -> dict:
            return _read_graphs(files, self.layout.path, weld=weld, normalize=normalize,
                                skip_bad=skip_bad, progress=progress,
                                desc=f"modelnet{variant} {split} (mesh graphs)")

        self._load(path, options, build, split=split, use_normals=use_normals,
                   transform=transform)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def get(self, i: int) -> Data:
        data = super().get(i)
        i = i % len(self)
        a, b = int(self.store["eptr"][i]), int(self.store["eptr"][i + 1])
        data.edge_index = self.store["edge_index"][:, a:b].clone()  # [2, E], local ids
        return data


def _read_graphs(files: list[tuple[Path, int]], root: Path, *, weld: bool, normalize: bool,
                 skip_bad: bool, progress: bool, desc: str) -> dict:
    """The packed store of :class:`~pcattn.data.base.CloudDataset`, plus ``edge_index``
    (local ids) and its offsets ``eptr``."""
    pos, x, edges, labels, names, skipped = [], [], [], [], [], []
    for path, label in tqdm(files, desc=desc, disable=not progress, unit="file"):
        try:
            g = read_mesh_graph(path, weld=weld, normalize=normalize)
        except DataFormatError as err:
            if not skip_bad:
                raise DataFormatError(f"{err}\n(fix or remove the file; or set data.skip_bad: "
                                      "true to skip unreadable files, which are then listed)"
                                      ) from None
            skipped.append((str(path), str(err)))
            continue
        pos.append(g.pos)
        x.append(g.x)
        edges.append(g.edge_index)
        labels.append(label)
        names.append(str(path.relative_to(root)))

    def offsets(sizes: list[int]) -> torch.Tensor:
        return torch.tensor(np.concatenate([[0], np.cumsum(sizes)]), dtype=torch.long)

    return {
        "pos": torch.cat(pos) if pos else torch.zeros(0, 3),
        "x": torch.cat(x) if x else torch.zeros(0, 3),
        "missing_x": [],
        "seg": None,
        "ptr": offsets([len(p) for p in pos]),
        "edge_index": torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.long),
        "eptr": offsets([e.shape[1] for e in edges]),
        "label": torch.tensor(labels, dtype=torch.long),
        "names": names,
        "skipped": skipped,
    }
