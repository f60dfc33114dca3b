"""Per-point values as a PLY for MeshLab and CloudCompare, written with open3d: the colours
of the picture and the value itself as a scalar property."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from pcattn.viz.colors import Scale, colorize


def save_ply(path: str | Path, pos: Tensor, values: Tensor, *,
             active: Tensor | None = None, queries: Tensor | None = None,
             scale: Scale | None = None, name: str = "attention") -> Path:
    """Write the cloud with ``red green blue`` (uchar) from
    :func:`~pcattn.viz.colors.colorize` and ``values`` as the float property ``name``
    (NaN at points outside ``active``, which carry no value; CloudCompare shows it as a
    scalar field, MeshLab as a per-vertex quality).

    Shape:
        pos: [N, 3], values: [N], active: [N] bool, queries: [Q]
    """
    import open3d as o3d

    rgb = colorize(values, active, queries, scale)  # [N, 3]
    value = values.detach().float().cpu().clone()
    if active is not None:
        value[~active.cpu()] = float("nan")
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(
        pos.detach().cpu().double().numpy()))
    cloud.point.colors = o3d.core.Tensor(np.round(rgb * 255).astype(np.uint8))
    setattr(cloud.point, name, o3d.core.Tensor(value.numpy()[:, None]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise ValueError(f"open3d could not write {path}")
    return path
