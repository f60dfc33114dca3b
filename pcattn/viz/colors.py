"""Per-point colours from per-point values: one mapping for the PNG, the PLY and the page."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

CMAP = "viridis"  # plotly's "Viridis" is the same scale, so the page shows the same colours
FADED = (0.82, 0.82, 0.82)  # input points a down-sampled layer does not hold


def value_range(values: Tensor, active: Tensor | None = None,
                exclude: Tensor | None = None) -> tuple[float, float]:
    """``(0, largest value)`` over the active points but those in ``exclude`` (``(0, 1)``
    when that is zero). Leaving the queries out keeps a query's weight on itself, often the
    largest by far (and always so in a rollout), from darkening every other point."""
    keep = torch.ones(values.shape[0], dtype=torch.bool) if active is None else active.clone()
    if exclude is not None and exclude.numel():
        keep[exclude.cpu()] = False
    v = values.detach().cpu()[keep]
    top = float(v.max()) if v.numel() else 0.0
    return 0.0, top if top > 0 else 1.0


def colorize(values: Tensor, active: Tensor | None = None, exclude: Tensor | None = None,
             cmap: str = CMAP) -> np.ndarray:
    """RGB in [0, 1] for each point: ``values`` scaled by :func:`value_range` (and clipped)
    through the colour map; points outside ``active`` get :data:`FADED`.

    Shape:
        values: [N], active: [N] bool, exclude: [Q] -> [N, 3]
    """
    from matplotlib import colormaps

    lo, hi = value_range(values, active, exclude)
    t = ((values.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1).numpy()
    rgb = colormaps[cmap](t)[:, :3]  # [N, 3]
    if active is not None:
        rgb[~active.cpu().numpy()] = FADED
    return rgb


def active_points(num_points: int, nodes: Tensor | None) -> Tensor:
    """Mask of the points a layer holds (all when ``nodes`` is None). Shape: -> [N]"""
    mask = torch.zeros(num_points, dtype=torch.bool)
    mask[slice(None) if nodes is None else nodes.cpu()] = True
    return mask
