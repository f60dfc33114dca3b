"""Attention on clouds: the quantities as tensors, and pictures of them.

From a model's ``forward_features(data, return_attention=True)["attention"]`` (a list of
:class:`~pcattn.nn.attention_map.LayerAttention`):

- tensors: :func:`attention_map` (what a query reads, absolute or ``relative`` to
  uniform), :func:`attention_received` (column sums), :func:`attention_rollout` /
  :func:`rollout_matrix` (Abnar & Zuidema 2020, sparse), :func:`make_view` (a mode, layer,
  head, queries and scale resolved), :func:`parse_query`;
- focus: :func:`focus_stats` (per layer and head, normalised entropy and top-1 share),
  :func:`merge_focus` (over clouds), :func:`plot_focus`;
- pictures: :func:`plot_attention` / :func:`save_png` (matplotlib), :func:`plot_grid`
  (layers x heads or queries), :func:`save_ply` (open3d, colours and values),
  :func:`save_html` (one offline page, plotly);
- :func:`visualize`: all of it for a checkpoint and one cloud (``pcattn visualize``).
"""

from pcattn.viz.colors import Scale, colorize, value_scale
from pcattn.viz.focus import Focus, focus_stats, merge_focus, plot_focus
from pcattn.viz.html import save_html
from pcattn.viz.ply import save_ply
from pcattn.viz.png import plot_attention, plot_grid, save_png
from pcattn.viz.quantities import (
    attention_map,
    attention_received,
    attention_rollout,
    point_layers,
    rollout_matrix,
    select_layer,
    snap_queries,
)
from pcattn.viz.query import parse_query
from pcattn.viz.run import load_model, visualize
from pcattn.viz.view import View, make_view

__all__ = [
    "Focus",
    "Scale",
    "View",
    "attention_map",
    "attention_received",
    "attention_rollout",
    "colorize",
    "focus_stats",
    "load_model",
    "make_view",
    "merge_focus",
    "parse_query",
    "plot_attention",
    "plot_focus",
    "plot_grid",
    "point_layers",
    "rollout_matrix",
    "save_html",
    "save_ply",
    "save_png",
    "select_layer",
    "snap_queries",
    "value_scale",
    "visualize",
]
