"""Query points from a short text: ``123`` | ``12,40,7`` | ``fps:4`` | ``xyz:0.1,0.2,0.0``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

QUERY_FORMS = ("an index like 123 (or several: 12,40,7), fps:4 (4 points spread by farthest "
               "point sampling) or xyz:0.1,0.2,0.0 (the point nearest to those coordinates)")


def parse_query(spec: str | int, pos: Tensor) -> Tensor:
    """Input-point indices named by ``spec``.

    ``"123"``: that point (``"12,40"``: those points); ``"fps:4"``: 4 points spread over the
    cloud by farthest point sampling; ``"xyz:x,y,z"``: the point nearest to those coordinates.

    Shape:
        pos: [N, 3] -> [Q]
    """
    n = pos.shape[0]
    text = str(spec).strip()
    kind, sep, arg = text.partition(":")
    if not sep:
        picked = []
        for part in text.split(","):
            i = _number(part, int, text)
            if not -n <= i < n:
                raise ValueError(f"query point {i} is out of range: the cloud has points "
                                 f"0..{n - 1}")
            picked.append(i % n)
        return torch.tensor(picked, device=pos.device)
    if kind == "fps":
        k = _number(arg, int, text)
        if not 1 <= k <= n:
            raise ValueError(f"query fps:{k} is out of range: take 1..{n} points")
        from pcattn.ops import farthest_point_sample

        return farthest_point_sample(pos, num=k)
    if kind == "xyz":
        coords = [_number(v, float, text) for v in arg.split(",")]
        if len(coords) != 3:
            raise ValueError(f"query {text!r} needs three coordinates, like xyz:0.1,0.2,0.0")
        xyz = torch.tensor(coords, dtype=pos.dtype, device=pos.device)
        return ((pos - xyz) ** 2).sum(1).argmin().reshape(1)
    raise ValueError(f"unknown query {text!r}: give {QUERY_FORMS}")


def _number(text: str, kind: type, spec: str):
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"cannot read the query {spec!r}: give {QUERY_FORMS}") from None
    if not math.isfinite(value):  # NaN would pick an arbitrary point (argmin over NaN)
        raise ValueError(f"query {spec!r}: {text.strip()!r} is not a finite number; give "
                         f"{QUERY_FORMS}")
    return value
