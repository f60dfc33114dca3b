"""One picture's worth of numbers: a mode, a layer, a head and queries, resolved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from pcattn.nn.attention_map import LayerAttention
from pcattn.viz.colors import active_points
from pcattn.viz.quantities import (
    attention_map,
    attention_received,
    attention_rollout,
    select_layer,
    snap_queries,
)
from pcattn.viz.query import parse_query

MODES = ("map", "received", "rollout")
DEFAULT_QUERY = {"map": "fps:4", "received": None, "rollout": "fps:1"}
DEFAULT_LAYER = {"map": 0, "received": 0, "rollout": -1}


class View(NamedTuple):
    """Values per input point and what they are.

    ``values [N]``; ``active [N]`` the points the layer holds (others are drawn faded);
    ``queries [Q]`` input-point indices of the (snapped) queries, empty for ``received``.
    """

    values: Tensor
    active: Tensor
    queries: Tensor
    mode: str
    layer: int
    layer_name: str
    head: int | None

    @property
    def label(self) -> str:
        head = "mean of heads" if self.head is None else f"head {self.head}"
        return f"layer {self.layer} ({self.layer_name}), {head}, {self.mode}"


def make_view(layers: Sequence[LayerAttention], pos: Tensor, mode: str = "map",
              layer: int | str | None = None, head: int | None = None,
              query: str | int | None = None) -> View:
    """Resolve the choices (defaults per mode: ``map`` layer 0 and ``fps:4`` queries,
    ``received`` layer 0, ``rollout`` the last layer and ``fps:1``) and compute the values.

    Shape:
        pos: [N, 3] -> View(values [N], active [N], queries [Q])
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "rollout" and head is not None:
        raise ValueError("rollout averages the heads of every layer (Abnar & Zuidema); "
                         "leave --head unset with --mode rollout")
    i = select_layer(layers, DEFAULT_LAYER[mode] if layer is None else layer)
    la, n = layers[i], pos.shape[0]
    if mode == "received":
        if query is not None:
            raise ValueError("--mode received sums over every query; leave --query unset")
        values = attention_received(layers, n, i, head)
        return View(values.cpu(), active_points(n, la.source_index), pos.new_zeros(0).long(),
                    mode, i, la.name, head)
    if la.map.kind == "pool":  # one query per cloud: the cloud itself
        if query is not None:
            raise ValueError(f"layer {la.name!r} pools the cloud (its query is the cloud, not "
                             "a point); leave --query unset")
        if mode == "map":
            values, active = attention_map(layers, pos, None, i, head), la.source_index
        else:
            values, active = attention_rollout(layers, pos, None, i), None
        return View(values.cpu(), active_points(n, active), torch.zeros(0, dtype=torch.long),
                    mode, i, la.name, head)
    q = parse_query(DEFAULT_QUERY[mode] if query is None else query, pos)
    if mode == "map":
        values = attention_map(layers, pos, q, i, head)
        active = active_points(n, la.source_index)
    else:
        values = attention_rollout(layers, pos, q, i)
        active = active_points(n, None)
    return View(values.cpu(), active, snap_queries(la, pos, q).cpu(), mode, i, la.name, head)
