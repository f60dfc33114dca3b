"""One picture's worth of numbers: a mode, a layer, a head and queries, resolved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from pcattn.nn.attention_map import LayerAttention
from pcattn.viz.colors import Scale, active_points, value_scale
from pcattn.viz.quantities import (
    attention_received,
    attention_rollout,
    map_read,
    select_layer,
    snap_queries,
)
from pcattn.viz.query import parse_query

MODES = ("map", "received", "rollout")
DEFAULT_QUERY = {"map": "fps:4", "received": None, "rollout": "fps:1"}
DEFAULT_LAYER = {"map": 0, "received": 0, "rollout": -1}
QUANTITY = {("map", True): "weight x points read (1 = uniform)",
            ("map", False): "attention weight",
            ("received", True): "received / uniform",
            ("received", False): "attention received",
            ("rollout", False): "rollout share"}


class View(NamedTuple):
    """Values per input point and what they are.

    ``values [N]``; ``active [N]`` the points that carry a value (read by the queries, or
    by any query for ``received``; others are drawn faded); ``queries [Q]`` input-point
    indices of the (snapped) queries, empty for ``received``; ``relative``: values are
    relative to uniform attention (:mod:`pcattn.viz.quantities`).
    """

    values: Tensor
    active: Tensor
    queries: Tensor
    mode: str
    layer: int
    layer_name: str
    head: int | None
    relative: bool = False

    @property
    def label(self) -> str:
        return f"layer {self.layer} ({self.layer_name}), {self.head_label}, {self.mode}"

    @property
    def head_label(self) -> str:
        return "mean of heads" if self.head is None else f"head {self.head}"

    @property
    def quantity(self) -> str:
        return QUANTITY[self.mode, self.relative]

    def scale(self) -> Scale:
        """The colour scale, titled with the quantity, layer and head."""
        title = f"{self.quantity}\nlayer {self.layer} ({self.layer_name}), {self.head_label}"
        return value_scale(self.values, self.active, self.queries, relative=self.relative,
                           title=title)


def make_view(layers: Sequence[LayerAttention], pos: Tensor, mode: str = "map",
              layer: int | str | None = None, head: int | None = None,
              query: str | int | None = None, relative: bool | None = None) -> View:
    """Resolve the choices (defaults per mode: ``map`` layer 0 and ``fps:4`` queries,
    ``received`` layer 0, ``rollout`` the last layer and ``fps:1``; ``relative`` to uniform
    for ``map`` and ``received``, rollout shares absolute) and compute the values.

    Shape:
        pos: [N, 3] -> View(values [N], active [N], queries [Q])
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "rollout" and head is not None:
        raise ValueError("rollout averages the heads of every layer (Abnar & Zuidema); "
                         "leave --head unset with --mode rollout")
    if mode == "rollout" and relative:
        raise ValueError("rollout shares have no uniform reference: use --scale absolute "
                         "(the default for --mode rollout)")
    relative = mode != "rollout" if relative is None else relative
    i = select_layer(layers, DEFAULT_LAYER[mode] if layer is None else layer)
    la, n = layers[i], pos.shape[0]
    if mode == "received":
        if query is not None:
            raise ValueError("--mode received sums over every query; leave --query unset")
        values = attention_received(layers, n, i, head, relative=relative).cpu()
        active = values > 0 if relative else active_points(n, la.source_index)
        return View(values, active, pos.new_zeros(0).long().cpu(), mode, i, la.name, head,
                    relative)
    if la.map.kind == "pool":  # one query per cloud: the cloud itself
        if query is not None:
            raise ValueError(f"layer {la.name!r} pools the cloud (its query is the cloud, not "
                             "a point); leave --query unset")
        if mode == "map":
            values, active = map_read(layers, pos, None, i, head, relative=relative)
        else:
            values, active = attention_rollout(layers, pos, None, i), active_points(n, None)
        return View(values.cpu(), active.cpu(), torch.zeros(0, dtype=torch.long), mode, i,
                    la.name, head, relative)
    q = parse_query(DEFAULT_QUERY[mode] if query is None else query, pos)
    if mode == "map":
        values, active = map_read(layers, pos, q, i, head, relative=relative)
    else:
        values, active = attention_rollout(layers, pos, q, i), active_points(n, None)
    return View(values.cpu(), active.cpu(), snap_queries(la, pos, q).cpu(), mode, i, la.name,
                head, relative)
