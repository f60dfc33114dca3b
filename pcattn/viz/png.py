"""Still pictures of per-point values: three labelled viewpoints with a titled colour bar, and
grids (layers x heads, layers x queries, runs) for comparisons. PNG, or SVG / PDF by the
file's suffix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from pcattn.viz.colors import FADED, Scale, colorize, value_scale

# (elevation, azimuth, label): two sides and the top
VIEWPOINTS = ((20, -60, "side, azimuth -60"), (20, 30, "side, azimuth 30"), (90, -90, "top"))
PANEL_INCHES, BAR_INCHES, DPI = 4.0, 1.5, 100
FORMATS = ("png", "svg", "pdf")


def plot_attention(pos: Tensor, values: Tensor, *, active: Tensor | None = None,
                   queries: Tensor | None = None, title: str = "",
                   parts: tuple[Tensor, Tensor | None] | None = None,
                   scale: Scale | None = None):
    """A matplotlib figure of the cloud from :data:`VIEWPOINTS` (each labelled), points
    coloured by ``values`` through ``scale`` (default: the absolute scale of the active
    points but the queries, :func:`~pcattn.viz.colors.value_scale`; faded outside
    ``active``), ``queries`` circled in red, a colour bar titled with ``scale.title``, and
    ``title``; ``parts=(predicted, truth)`` (segmentation) adds panels of part ids with a
    legend (``truth`` may be None).

    Shape:
        pos: [N, 3], values: [N], active: [N] bool, queries: [Q], parts: ([N], [N])
    """
    plt = _pyplot()
    scale = scale or value_scale(values, active, queries)
    xyz = pos.detach().float().cpu().numpy()
    rgb = colorize(values, active, queries, scale)
    order = _draw_order(active)
    labelled = [] if parts is None else [
        (labels, name) for labels, name in zip(parts, ("predicted parts", "ground truth"))
        if labels is not None]
    panels = len(VIEWPOINTS) + len(labelled)
    fig = plt.figure(figsize=(PANEL_INCHES * panels + BAR_INCHES, PANEL_INCHES + 0.6), dpi=DPI)
    width = (fig.get_figwidth() - BAR_INCHES) / fig.get_figwidth() / panels
    for p, (elev, azim, label) in enumerate(VIEWPOINTS):
        ax = _axes(fig, (p * width, 0.0, width, 0.88), elev, azim, xyz)
        _scatter(ax, xyz, rgb, order, queries)
        ax.set_title(label, fontsize=9, y=0.97)
    if labelled:
        for p, (labels, name) in enumerate(labelled):
            ax = _axes(fig, ((len(VIEWPOINTS) + p) * width, 0.0, width, 0.88),
                       *VIEWPOINTS[0][:2], xyz)
            _parts(ax, xyz, labels.cpu().numpy())
            ax.set_title(f"{name}, {VIEWPOINTS[0][2]}", fontsize=9, y=0.97)
    _colorbar(fig, scale)
    fig.suptitle(title, fontsize=11)
    return fig


def plot_grid(pos: Tensor, cells: Sequence[Sequence], *, row_labels: Sequence[str],
              cell_titles: Sequence[Sequence[str]], title: str = "",
              parts: tuple[Tensor, Tensor | None] | None = None):
    """One figure of ``cells[r][c]`` (:class:`~pcattn.viz.view.View` or None for an empty
    cell) seen along the cloud's thinnest axis (:func:`broad_view`), on one scale shared by
    every cell (so cells compare), rows labelled and each cell titled, queries circled;
    ``parts`` adds the predicted (and true) parts with a legend beside the first row.

    Shape:
        pos: [N, 3]
    """
    plt = _pyplot()
    xyz = pos.detach().float().cpu().numpy()
    filled = [v for row in cells for v in row if v is not None]
    scale = shared_scale(filled)
    extra = 0 if parts is None else sum(p is not None for p in parts)
    rows, cols = len(cells), max(len(r) for r in cells) + extra
    inch = 2.6
    fig = plt.figure(figsize=(inch * cols + BAR_INCHES + 0.5, inch * rows + 0.7), dpi=DPI)
    w_frac = inch / fig.get_figwidth()
    h_frac = inch / fig.get_figheight()
    left = 0.5 / fig.get_figwidth()
    elev, azim = broad_view(xyz)
    for r, row in enumerate(cells):
        bottom = 1 - (0.5 / fig.get_figheight()) - (r + 1) * h_frac
        fig.text(left * 0.5, bottom + h_frac / 2, row_labels[r], rotation=90, ha="center",
                 va="center", fontsize=9)
        for c, view in enumerate(row):
            if view is None:
                continue
            ax = _axes(fig, (left + c * w_frac, bottom, w_frac, h_frac), elev, azim, xyz)
            _scatter(ax, xyz, colorize(view.values, view.active, view.queries, scale),
                     _draw_order(view.active), view.queries, size_factor=0.6)
            ax.set_title(cell_titles[r][c], fontsize=8, y=0.95)
        if parts is not None and r == 0:
            shown = [(p, n) for p, n in zip(parts, ("predicted parts", "ground truth"))
                     if p is not None]
            for j, (labels, name) in enumerate(shown):
                ax = _axes(fig, (left + (len(row) + j) * w_frac, bottom, w_frac, h_frac),
                           elev, azim, xyz)
                _parts(ax, xyz, labels.cpu().numpy(), size_factor=0.6)
                ax.set_title(name, fontsize=9, y=0.95)
    _colorbar(fig, scale)
    fig.suptitle(title, fontsize=10)
    return fig


def broad_view(xyz: np.ndarray) -> tuple[float, float]:
    """``(elevation, azimuth)`` looking along the cloud's direction of least extent (its
    smallest principal axis), where one view shows the most of it.

    Shape:
        xyz: [N, 3]
    """
    centred = xyz - xyz.mean(0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # eigenvalues ascending
    n = vectors[:, 0]
    return float(np.degrees(np.arcsin(np.clip(n[2], -1, 1)))), float(
        np.degrees(np.arctan2(n[1], n[0])))


def shared_scale(views: Sequence) -> Scale:
    """One scale for several views: the widest of theirs, titled with the quantity only
    when it is the same in all."""
    scales = [v.scale() for v in views]
    first = scales[0]
    quantities = {v.quantity for v in views}
    title = views[0].quantity if len(quantities) == 1 else ""
    lo = min(s.lo for s in scales)
    clipped = first.relative and any(
        bool((v.values[_scaled(v)].double().clamp_min(1e-300).log2() < lo - 1e-9).any())
        for v in views)
    return Scale(first.relative, lo, max(s.hi for s in scales), title, clipped)


def _scaled(view) -> Tensor:
    """The points a view's scale is set by: those with a value but the queries."""
    keep = view.active.clone()
    keep[view.queries] = False
    return keep


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by its suffix) and close it."""
    from matplotlib import pyplot as plt

    path = Path(path)
    if path.suffix.lstrip(".") not in FORMATS:
        raise ValueError(f"cannot write a figure as {path.suffix or 'a file without suffix'}: "
                         f"use one of {', '.join('.' + f for f in FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def save_png(path: str | Path, pos: Tensor, values: Tensor, **kwargs) -> Path:
    """:func:`plot_attention` written to ``path`` (PNG, or SVG / PDF by its suffix)."""
    return save_figure(plot_attention(pos, values, **kwargs), path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _draw_order(active: Tensor | None) -> np.ndarray:
    """Faded points first, so the points with a value are drawn over them."""
    if active is None:
        return np.arange(0)
    a = active.cpu().numpy()
    return np.concatenate([np.flatnonzero(~a), np.flatnonzero(a)])


def _scatter(ax, xyz: np.ndarray, rgb: np.ndarray, order: np.ndarray, queries,
             size_factor: float = 1.0) -> None:
    """Points with a value drawn larger than the faded ones and over them; queries circled."""
    size = _size(len(xyz)) * size_factor
    sizes = np.full(len(xyz), size)
    if order.size:
        faded = np.all(rgb == FADED, axis=1)
        sizes = np.where(faded, size * 0.5, size * (1.6 if faded.any() else 1.0))[order]
        pts, rgb = xyz[order], rgb[order]
    else:
        pts = xyz
    ax.scatter(*pts.T, c=rgb, s=sizes, depthshade=False, linewidths=0)
    if queries is not None and queries.numel():
        q = xyz[queries.cpu().numpy()]
        ax.scatter(*q.T, marker="o", s=160 * size_factor, facecolors="none",
                   edgecolors="red", linewidths=1.6, depthshade=False)


def _parts(ax, xyz: np.ndarray, labels: np.ndarray, size_factor: float = 1.0) -> None:
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    cmap = colormaps["tab20"]
    ax.scatter(*xyz.T, c=cmap(labels % 20), s=_size(len(xyz)) * size_factor,
               depthshade=False, linewidths=0)
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap(p % 20), label=f"part {p}")
               for p in np.unique(labels)]
    ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False, handletextpad=0.1,
              borderaxespad=0.0, ncol=2 if len(handles) > 4 else 1)


def _colorbar(fig, scale: Scale) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    width = fig.get_figwidth()
    bar = fig.add_axes((1 - 1.0 / width, 0.12, 0.12 / width, 0.7))
    cb = fig.colorbar(ScalarMappable(Normalize(scale.lo, scale.hi), scale.cmap()), cax=bar,
                      extend="min" if scale.clipped else "neither")
    ticks, labels = scale.ticks()
    cb.set_ticks(ticks, labels=labels, fontsize=8)
    cb.set_label(scale.title, fontsize=8)
    bar.yaxis.set_label_position("left")


def _axes(fig, rect, elev: float, azim: float, xyz: np.ndarray):
    ax = fig.add_axes(rect, projection="3d")
    ax.view_init(elev=elev, azim=azim)
    centre, half = xyz.mean(0), np.abs(xyz - xyz.mean(0)).max()
    for set_lim, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        set_lim(c - half, c + half)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    ax.set_axis_off()
    return ax


def _size(n: int) -> float:
    return float(np.clip(6000 / n, 2, 30))
