"""Per-point colours from per-point values: one mapping for the PNG, the PLY and the page.

Two scales. ``relative`` values (weight x the number of points the query reads, 1 = uniform)
are drawn as ``log2`` on a diverging map centred at uniform: red where the query reads a point
more than uniformly, blue where less, grey at uniform, the range symmetric and set by the
strongest preference (weights further below uniform take the darkest blue; ``log2`` of a weight
near 0 is unbounded and would otherwise grey out every preference). ``absolute`` values
(weights, rollout shares) run from 0 on viridis. Points that carry no value (not read, not held by the layer) are drawn :data:`FADED`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

CMAP = "viridis"  # the absolute scale (the page gets it as a plotly colorscale too)
FADED = (0.82, 0.82, 0.82)  # points without a value: not read, or not held by the layer
# a diverging map whose middle (uniform) is a mid grey, visible on white, and whose ends
# (strongest preference / avoidance) are the darkest: ColorBrewer RdBu's ends, grey centre
DIVERGING = ("#053061", "#4393c3", "#8c8c8c", "#d6604d", "#67001f")
MIN_SPAN = math.log2(1.05)  # a relative scale spans at least x0.95..x1.05
RATIO_TICKS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 2 / 3, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0,
               8.0, 16.0)


class Scale(NamedTuple):
    """How values become colours: ``lo..hi`` in drawn units (``log2`` of the value when
    ``relative``), the colour bar's ``title``; ``clipped``: some values lie below ``lo``."""

    relative: bool
    lo: float
    hi: float
    title: str = ""
    clipped: bool = False

    def unit(self, values: Tensor) -> np.ndarray:
        """Each value's place on the colour map, in [0, 1] (NaN stays NaN)."""
        v = values.detach().double().cpu()
        if self.relative:
            v = torch.log2(v.clamp_min(1e-30))
        return ((v - self.lo) / (self.hi - self.lo)).clamp(0, 1).numpy()

    def cmap(self):
        """The matplotlib colour map."""
        from matplotlib import colormaps
        from matplotlib.colors import LinearSegmentedColormap

        if self.relative:
            # an odd number of levels puts uniform (0.5) on the middle colour exactly
            return LinearSegmentedColormap.from_list("pcattn_diverging", DIVERGING, N=257)
        return colormaps[CMAP]

    def ticks(self) -> tuple[list[float], list[str]]:
        """Colour-bar ticks in drawn units and their labels (ratios for ``relative``)."""
        if not self.relative:
            return list(np.linspace(self.lo, self.hi, 5)), [
                f"{t:.3g}" for t in np.linspace(self.lo, self.hi, 5)]
        span = self.hi - self.lo
        inner = [r for r in RATIO_TICKS
                 if self.lo + 0.15 * span < math.log2(r) < self.hi - 0.15 * span]
        while len(inner) > 5:  # keep uniform and thin out the rest evenly
            inner = [r for k, r in enumerate(inner) if k % 2 == inner.index(1.0) % 2]
        ratios = [2.0 ** self.lo, *inner, 2.0 ** self.hi]
        labels = [_ratio(r) for r in ratios]
        if self.clipped:
            labels[0] = "<= " + labels[0]
        return [math.log2(r) for r in ratios], labels

    def colorscale(self, stops: int = 11) -> list:
        """The colour map as a plotly colorscale (so the page draws the PNG's colours)."""
        cmap = self.cmap()
        return [[t, "rgb({},{},{})".format(*(int(round(255 * c)) for c in cmap(t)[:3]))]
                for t in np.linspace(0, 1, stops)]


def _ratio(r: float) -> str:
    return "1 uniform" if r == 1 else f"x{r:.3g}" if r > 1 else f"x{r:.2g}"


def value_scale(values: Tensor, active: Tensor | None = None, exclude: Tensor | None = None,
                *, relative: bool = False, title: str = "") -> Scale:
    """The scale over the active points but those in ``exclude``: ``(0, largest value)``
    (``(0, 1)`` when that is zero), or for ``relative`` values ``log2`` symmetric about
    uniform, ``+-`` the largest ``log2`` (the largest ``|log2|`` when no value is above
    uniform; at least :data:`MIN_SPAN`). Leaving the queries
    out keeps a query's weight on itself, often the largest by far (and always so in a
    rollout), from washing out every other point."""
    keep = torch.ones(values.shape[0], dtype=torch.bool) if active is None else active.clone()
    if exclude is not None and exclude.numel():
        keep[exclude.cpu()] = False
    v = values.detach().double().cpu()[keep]
    if relative:
        logs = torch.log2(v[v > 0])
        top = float(logs.max()) if logs.numel() else 0.0
        bottom = float(-logs.min()) if logs.numel() else 0.0
        span = max(top if top > 0 else bottom, MIN_SPAN)
        return Scale(True, -span, span, title, bottom > span + 1e-9 or bool((v <= 0).any()))
    top = float(v.max()) if v.numel() else 0.0
    return Scale(False, 0.0, top if top > 0 else 1.0, title)


def colorize(values: Tensor, active: Tensor | None = None, exclude: Tensor | None = None,
             scale: Scale | None = None) -> np.ndarray:
    """RGB in [0, 1] for each point: ``values`` through ``scale`` (default: the absolute
    :func:`value_scale` of the active points but ``exclude``); points outside ``active``
    get :data:`FADED`.

    Shape:
        values: [N], active: [N] bool, exclude: [Q] -> [N, 3]
    """
    scale = scale or value_scale(values, active, exclude)
    rgb = scale.cmap()(scale.unit(values))[:, :3]  # [N, 3]
    if active is not None:
        rgb[~active.cpu().numpy()] = FADED
    return rgb


def active_points(num_points: int, nodes: Tensor | None) -> Tensor:
    """Mask of the points a layer holds (all when ``nodes`` is None). Shape: -> [N]"""
    mask = torch.zeros(num_points, dtype=torch.bool)
    mask[slice(None) if nodes is None else nodes.cpu()] = True
    return mask
