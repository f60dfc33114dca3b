"""Per-point values as a coloured PLY (for MeshLab, CloudCompare), written with open3d."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from pcattn.viz.colors import colorize


def save_ply(path: str | Path, pos: Tensor, values: Tensor, *,
             active: Tensor | None = None, queries: Tensor | None = None) -> Path:
    """Write the cloud with the colours of :func:`~pcattn.viz.colors.colorize`.

    Shape:
        pos: [N, 3], values: [N], active: [N] bool, queries: [Q]
    """
    import open3d as o3d

    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(pos.detach().cpu().double().numpy())
    rgb = colorize(values, active, queries)  # [N, 3]
    cloud.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(rgb, dtype=np.float64))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.io.write_point_cloud(str(path), cloud):
        raise ValueError(f"open3d could not write {path}")
    return path
