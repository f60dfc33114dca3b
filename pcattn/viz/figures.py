"""Comparison figures of one cloud: layers x heads, layers x queries, layers x runs, and the
focus plot with its table and CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import Tensor

from pcattn.nn.attention_map import LayerAttention
from pcattn.viz.focus import Focus, focus_table, most_selective_heads, plot_focus
from pcattn.viz.png import FORMATS, plot_grid, save_figure
from pcattn.viz.query import parse_query
from pcattn.viz.view import DEFAULT_QUERY, make_view

GRIDS = ("heads", "queries")
SELECTIVE_HEADS = 3  # columns after the mean in a layers x heads grid


def check_grid(grid: str, mode: str, head: int | None) -> None:
    """Refuse a grid the choices cannot fill, naming the fix."""
    if grid not in GRIDS:
        raise ValueError(f"--grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    if grid == "heads" and (mode == "rollout" or head is not None):
        raise ValueError("a layers x heads grid draws every head's map: use --mode map or "
                         "received and leave --head unset")
    if grid == "queries" and mode == "received":
        raise ValueError("--mode received has no query: use --grid heads")


def grid_cells(grid: str, pos: Tensor, layers: Sequence[LayerAttention],
               focus: Sequence[Focus], *, mode: str = "map", query: str | None = None,
               head: int | None = None, relative: bool | None = None):
    """The views of a grid: ``heads``: per layer its mean over heads and its
    :data:`SELECTIVE_HEADS` most selective heads (lowest normalised entropy, so the sharp
    channels of vector attention show, not only their near-uniform mean); ``queries``: per
    layer one column per query. Returns ``(cells, row_labels, cell_titles)``."""
    check_grid(grid, mode, head)
    spec = DEFAULT_QUERY[mode] if query is None else query
    queries = parse_query(spec, pos) if spec is not None else None
    cells, rows, titles = [], [], []
    for i, la in enumerate(layers):
        rows.append(f"{i}: {la.name}")
        if grid == "heads":
            picks = [None] + (most_selective_heads(focus[i], SELECTIVE_HEADS)
                              if la.map.heads > 1 else [])
            cells.append([make_view(layers, pos, mode, i, h, _spec(queries, la), relative)
                          for h in picks])
            titles.append(["mean of heads"] + [
                f"head {h}, entropy {float(focus[i].entropy[h]):.3f}" for h in picks[1:]])
        else:
            qs = [None] if la.map.kind == "pool" else queries.tolist()
            cells.append([make_view(layers, pos, mode, i, head, None if q is None else str(q),
                                    relative) for q in qs])
            titles.append(["the cloud (pooling)"] if la.map.kind == "pool"
                          else [f"query {q}" for q in qs])
    return cells, rows, titles


def _spec(queries: Tensor | None, layer: LayerAttention) -> str | None:
    if queries is None or layer.map.kind == "pool":
        return None
    return ",".join(str(q) for q in queries.tolist())


def save_grid(path: str | Path, grid: str, pos: Tensor, layers: Sequence[LayerAttention],
              focus: Sequence[Focus], *, title: str = "", parts=None, **choices) -> Path:
    """:func:`grid_cells` drawn by :func:`~pcattn.viz.png.plot_grid` into ``path``."""
    cells, rows, titles = grid_cells(grid, pos, layers, focus, **choices)
    fig = plot_grid(pos, cells, row_labels=rows, cell_titles=titles, title=title, parts=parts)
    return save_figure(fig, path)


def save_runs(path: str | Path, pos: Tensor, runs: Mapping[str, Sequence[LayerAttention]],
              *, mode: str = "map", query: str | None = None, head: int | None = None,
              relative: bool | None = None, title: str = "") -> Path:
    """Several models on the same cloud: one column per run (``runs``: label -> its layers),
    one row per layer depth, the same queries, one scale."""
    spec = DEFAULT_QUERY[mode] if query is None else query
    queries = parse_query(spec, pos) if spec is not None else None
    depth = max(len(layers) for layers in runs.values())
    cells, titles = [], []
    for i in range(depth):
        row, names = [], []
        for label, layers in runs.items():
            if i >= len(layers):
                row.append(None)
                names.append("")
                continue
            try:
                row.append(make_view(layers, pos, mode, i, head, _spec(queries, layers[i]),
                                     relative))
            except ValueError as err:
                raise ValueError(f"{label}: {err}") from None
            names.append(f"{label}\n{layers[i].name}")
        cells.append(row)
        titles.append(names)
    fig = plot_grid(pos, cells, row_labels=[f"layer {i}" for i in range(depth)],
                    cell_titles=titles, title=title)
    return save_figure(fig, path)


def save_focus(stem: str | Path, runs: Mapping[str, Sequence[Focus]], *,
               over: Mapping[str, Sequence[Focus]] | None = None,
               figure_format: str = "png") -> tuple[dict[str, Path], str]:
    """The focus of each run on the cloud (``runs``) and over a sample of clouds (``over``)
    as a table (returned), a plot (``stem.<figure_format>``) and ``stem.csv``."""
    if figure_format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    series = {f"{name}, this cloud": stats for name, stats in runs.items()}
    series.update(over or {})
    text = "\n\n".join(focus_table(stats, label) for label, stats in series.items())
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["scope", "layer", "name", "head", "entropy", "top1", "uniform_top1",
                      "reads", "rows"])
        for label, stats in series.items():
            for i, f in enumerate(stats):
                for h in range(f.entropy.numel()):
                    out.writerow([label, i, f.name, h, f"{float(f.entropy[h]):.6f}",
                                  f"{float(f.top1[h]):.6f}", f"{f.uniform_top1:.6f}",
                                  f"{f.sources:.3f}", f.rows])
    plot = save_figure(plot_focus(series), stem.with_suffix("." + figure_format))
    return {"focus": plot, "focus_csv": stem.with_suffix(".csv")}, text
