"""Geometry of whole clouds and meshes, shared by every reader: surface sampling and the
unit-sphere normalisation."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from pcattn.data.errors import DataFormatError

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, num_points: int,
                   rng: np.random.Generator, *, name: str = "mesh"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points drawn uniformly by area over the triangles, with each triangle's normal.

    A triangle is picked with probability proportional to its area, then a point in it
    with uniform barycentric coordinates ``(1 - sqrt(r1), sqrt(r1)(1 - r2), sqrt(r1) r2)``.

    Shape:
        vertices [V, 3], faces [F, 3] -> xyz [num_points, 3], normals [num_points, 3],
        the face of each point [num_points]
    """
    tri = vertices[faces]  # [F, 3, 3]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # [F, 3]
    area = np.linalg.norm(cross, axis=1)  # [F]
    total = area.sum()
    if not np.isfinite(total):
        raise DataFormatError(f"{name}: the mesh has NaN or infinite vertex coordinates")
    if total <= 0:
        raise DataFormatError(f"{name}: the mesh has no surface area (no faces, or all "
                              "degenerate); it cannot be sampled")
    normals = cross / np.maximum(area, 1e-300)[:, None]  # [F, 3]
    pick = rng.choice(len(tri), size=num_points, p=area / total)  # [S]
    r1, r2 = rng.random(num_points), rng.random(num_points)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)  # [S, 3] uniform barycentric
    xyz = np.einsum("sk,skd->sd", w, tri[pick])  # [S, 3]
    return xyz, normals[pick], pick


def normalize_unit_sphere(xyz: Array) -> Array:
    """Centre on the mean, scale the farthest point to radius 1 (numpy or torch), in the
    input's dtype.

    The centre and the radius are computed in float64, so any finite float32 cloud comes out
    the same whatever its scale: in float32 the squared radius of a cloud of extent 1e20
    overflows and that of a cloud of extent 1e-20 underflows. A cloud of zero extent (one
    point, or copies of one) comes out as zeros.

    Shape:
        xyz: [N, 3] -> [N, 3]
    """
    if isinstance(xyz, torch.Tensor):
        wide = xyz.double()
        wide = wide - wide.mean(0)
        radius = float(wide.norm(dim=1).max()) if len(wide) else 0.0
        return (wide / radius if radius > 0 else wide).to(xyz.dtype)
    wide = np.asarray(xyz, dtype=np.float64)
    wide = wide - wide.mean(0)
    radius = float(np.linalg.norm(wide, axis=1).max()) if len(wide) else 0.0
    return (wide / radius if radius > 0 else wide).astype(xyz.dtype, copy=False)

