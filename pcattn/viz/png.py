"""A still picture of per-point values: three viewpoints, a colour bar, the queries marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from pcattn.viz.colors import CMAP, colorize, value_range

VIEWPOINTS = ((20, -60), (20, 30), (90, -90))  # (elevation, azimuth): two sides and the top
PANEL_INCHES, BAR_INCHES, DPI = 4.0, 1.0, 100


def plot_attention(pos: Tensor, values: Tensor, *, active: Tensor | None = None,
                   queries: Tensor | None = None, title: str = "",
                   parts: tuple[Tensor, Tensor | None] | None = None):
    """A matplotlib figure of the cloud from :data:`VIEWPOINTS`, points coloured by
    ``values`` (faded outside ``active``; the scale spans the points other than the
    queries, :func:`~pcattn.viz.colors.value_range`), ``queries`` circled in red, a colour bar
    and ``title``; ``parts=(predicted, truth)`` (segmentation) adds panels of part ids
    (``truth`` may be None).

    Shape:
        pos: [N, 3], values: [N], active: [N] bool, queries: [Q], parts: ([N], [N])
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from matplotlib import pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    xyz = pos.detach().float().cpu().numpy()
    rgb = colorize(values, active, queries)
    labelled = [] if parts is None else [
        (labels, name) for labels, name in zip(parts, ("predicted parts", "ground truth"))
        if labels is not None]
    panels = len(VIEWPOINTS) + len(labelled)
    fig = plt.figure(figsize=(PANEL_INCHES * panels + BAR_INCHES, PANEL_INCHES + 0.6), dpi=DPI)
    for p, (elev, azim) in enumerate(VIEWPOINTS):
        ax = _axes(fig, panels, p, elev, azim, xyz)
        ax.scatter(*xyz.T, c=rgb, s=_size(len(xyz)), depthshade=False,
                   linewidths=0)
        if queries is not None and queries.numel():
            q = xyz[queries.cpu().numpy()]
            ax.scatter(*q.T, marker="o", s=160, facecolors="none", edgecolors="red",
                       linewidths=1.6, depthshade=False)
    if labelled:
        cmap = colormaps["tab20"]
        for p, (labels, name) in enumerate(labelled):
            ax = _axes(fig, panels, len(VIEWPOINTS) + p, *VIEWPOINTS[0], xyz)
            ax.scatter(*xyz.T, c=cmap(labels.cpu().numpy() % 20), s=_size(len(xyz)),
                       depthshade=False, linewidths=0)
            ax.set_title(name, fontsize=10)
    lo, hi = value_range(values, active, queries)
    width = fig.get_figwidth()
    bar = fig.add_axes((1 - 0.8 / width, 0.12, 0.12 / width, 0.7))
    fig.colorbar(ScalarMappable(Normalize(lo, hi), colormaps[CMAP]), cax=bar)
    fig.suptitle(title, fontsize=11)
    return fig


def save_png(path: str | Path, pos: Tensor, values: Tensor, **kwargs) -> Path:
    """:func:`plot_attention` written to ``path`` (PNG). Returns the path."""
    from matplotlib import pyplot as plt

    fig = plot_attention(pos, values, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _axes(fig, panels: int, p: int, elev: float, azim: float, xyz: np.ndarray):
    width = (fig.get_figwidth() - BAR_INCHES) / fig.get_figwidth() / panels
    ax = fig.add_axes((p * width, 0.0, width, 0.9), projection="3d")
    ax.view_init(elev=elev, azim=azim)
    centre, half = xyz.mean(0), np.abs(xyz - xyz.mean(0)).max()
    for set_lim, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        set_lim(c - half, c + half)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    ax.set_axis_off()
    return ax


def _size(n: int) -> float:
    return float(np.clip(6000 / n, 2, 30))
