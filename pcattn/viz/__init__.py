"""Attention on clouds: the quantities as tensors, and pictures of them.

From a model's ``forward_features(data, return_attention=True)["attention"]`` (a list of
:class:`~pcattn.nn.attention_map.LayerAttention`):

- tensors: :func:`attention_map` (what a query reads), :func:`attention_received` (column
  sums), :func:`attention_rollout` / :func:`rollout_matrix` (Abnar & Zuidema 2020, sparse),
  :func:`make_view` (a mode, layer, head and query resolved), :func:`parse_query`;
- pictures: :func:`plot_attention` / :func:`save_png` (matplotlib), :func:`save_ply`
  (open3d), :func:`save_html` (one offline page, plotly);
- :func:`visualize`: all of it for a checkpoint and one cloud (``pcattn visualize``).
"""

from pcattn.viz.colors import colorize
from pcattn.viz.html import save_html
from pcattn.viz.ply import save_ply
from pcattn.viz.png import plot_attention, save_png
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
    "View",
    "attention_map",
    "attention_received",
    "attention_rollout",
    "colorize",
    "load_model",
    "make_view",
    "parse_query",
    "plot_attention",
    "point_layers",
    "rollout_matrix",
    "save_html",
    "save_ply",
    "save_png",
    "select_layer",
    "snap_queries",
    "visualize",
]
