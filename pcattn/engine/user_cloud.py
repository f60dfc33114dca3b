"""A user's cloud made fit for a checkpoint's model (``pcattn predict``, ``pcattn visualize``):
read, checked against what the model can judge, bounded to ``max_points`` and normalised.

What the model cannot judge is an error: a cloud of zero extent (one position, however many
copies), and fewer distinct points than the model's neighbourhood size ``k`` (each point is
compared with its ``k`` nearest). What it can judge, but far from what it was trained on, is
a :class:`CloudWarning`: fewer than ``num_points / SIZE_FACTOR`` points, or more than
``num_points * SIZE_FACTOR`` (possible only when ``max_points`` is raised above its default).

A cloud of more than ``max_points`` points is down-sampled (``sampling``): ``"fps"`` keeps
``max_points`` points spread by farthest point sampling (cost ``N * max_points``);
``"voxel"`` keeps one point per occupied cell of the finest cubic grid with at most
``max_points`` cells (cost ``N log N`` per tried grid, about 20 grids); ``"auto"`` is FPS up to
``FPS_LIMIT * max_points`` input points, and beyond a voxel grid of at most
``VOXEL_FIRST * max_points`` cells followed by FPS. :func:`propagate` carries per-point
outputs of the sampled points back to every input point (its nearest sampled point).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from torch_geometric.data import Data

SIZE_FACTOR = 4  # warn outside [num_points / 4, num_points * 4]; default max_points: x 4
SAMPLINGS = ("auto", "fps", "voxel")
FPS_LIMIT = 250  # auto: FPS alone while N <= FPS_LIMIT * max_points (about 7 s at 10^6 -> 4096)
VOXEL_FIRST = 16  # auto beyond that: a voxel grid of <= VOXEL_FIRST * max_points cells first
BIG_FILE = 16 << 20  # bytes: reading a larger file is announced
_MAX_CELLS_PER_SIDE = 1 << 20  # (2^20)^3 cell ids fit in int64


class CloudWarning(UserWarning):
    """A cloud the model can judge, but far from the clouds it was trained on."""


@dataclass
class UserCloud:
    """``data``: what the model reads (normalised, at most ``max_points`` points, ``x`` the
    normals or None); ``pos``: every input point, normalised alike; ``keep``: the rows of
    ``pos`` that ``data`` holds (None: all of them, in order); ``sampling``: how they were
    chosen (``""``: not down-sampled); ``file_pos``: every input point as the file has it
    (what outputs per point are written at, so they overlay the input).

    Shape:
        data.pos: [S, 3], pos: [N, 3], keep: [S], file_pos: [N, 3]
    """

    data: Data
    pos: Tensor
    keep: Tensor | None
    sampling: str
    file_pos: Tensor


def default_max_points(num_points: int) -> int:
    """``--max-points`` when not given: :data:`SIZE_FACTOR` times the training ``num_points``
    (beyond it the model's ``k`` neighbours span less than half the radius they spanned in
    training, on a surface)."""
    return SIZE_FACTOR * num_points


def min_points(run) -> int:
    """The fewest distinct points the model of ``run`` can judge: its ``k`` (2 without one)."""
    return max(int(getattr(run.model, "k", 0) or 0), 2)


def _why(run, need: int) -> str:
    """Why the model needs ``need`` points, in its own terms."""
    if getattr(run.model, "k", None):
        return f"compares each point with its {need} nearest"
    return "needs a shape of several points"


def load_user_cloud(path: str | Path, run, *, max_points: int | None = None,
                    sampling: str = "auto", use_normals: bool | None = None,
                    say: Callable[[str], None] | None = None) -> UserCloud:
    """Read ``path`` (any file :func:`~pcattn.data.io.read_cloud` reads) for the model of
    ``run``: normalise it to the unit sphere (in float64), down-sample it to ``max_points``
    (default :func:`default_max_points`) by ``sampling``, and check it (see the module).

    ``use_normals`` (default: whether the checkpoint's model reads feature channels): keep the
    file's normals as ``x`` (an error when the file has none or another width). ``say`` gets one line per long step (reading a big
    file, down-sampling) and the down-sampling chosen.

    Raises:
        ValueError: a cloud the model cannot judge, or a bad ``max_points`` / ``sampling``.
    """
    from pcattn.data.geometry import normalize_unit_sphere
    from pcattn.data.io import read_cloud

    path = Path(path)
    say = say or (lambda line: None)
    num_points = run.data.num_points
    max_points = default_max_points(num_points) if max_points is None else max_points
    need = min_points(run)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < need:
        raise ValueError(f"--max-points must be an integer >= {need} (the model "
                         f"{_why(run, need)}), got {max_points!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"--sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if path.is_file() and path.stat().st_size > BIG_FILE:
        say(f"{path}: reading {path.stat().st_size / 2**20:.0f} MB")
    raw = read_cloud(path, num_points=num_points)
    if raw.pos.shape[0] > 1 and bool((raw.pos == raw.pos[0]).all()):
        raise ValueError(f"{path}: all {raw.pos.shape[0]} points are at one position "
                         f"{[round(float(v), 6) for v in raw.pos[0]]}: a cloud of zero extent "
                         "has no shape to judge; give a cloud of the object's surface")
    pos = normalize_unit_sphere(raw.pos)  # [N, 3] float32, computed in float64
    keep, how, t0 = None, "", time.perf_counter()
    if pos.shape[0] > max_points:
        keep, how = downsample(pos, max_points, sampling)
    data = Data(pos=pos if keep is None else pos[keep],
                x=None if raw.x is None else (raw.x if keep is None else raw.x[keep]))
    _check_size(path, data.pos, pos.shape[0], run, need)
    if keep is not None:
        say(f"{path}: {pos.shape[0]} points > --max-points {max_points}: kept {keep.numel()} "
            f"by {how} ({time.perf_counter() - t0:.1f} s)")
    channels = getattr(run.model, "feature_channels", 0)
    if not (channels > 0 if use_normals is None else use_normals):
        data.x = None
    elif data.x is None:
        raise ValueError(f"{path}: the model reads normals (data.use_normals) but the file "
                         "has none; give a file with normals (.ply with normals, x y z nx ny "
                         "nz rows, or a mesh)")
    elif channels and data.x.shape[1] != channels:
        raise ValueError(f"{path}: the model reads {channels} feature channels per point, the "
                         f"file has {data.x.shape[1]}")
    return UserCloud(data, pos, keep, how, raw.pos)


def category_index(category: str | int | None, names: list[str] | None, needed: int) -> int:
    """The index of the object ``category`` (a name of ``names``, any case, or an index below
    ``needed``) that a part-segmentation model needs with a user's cloud."""
    names = list(names or [])
    if category is None:
        raise ValueError(f"this is a part-segmentation model over {needed} object categories"
                         f"{' ' + str(names) if names else ''}: pass --category NAME")
    lower = [n.lower() for n in names]
    if str(category).lower() in lower:
        return lower.index(str(category).lower())
    if str(category).isdigit() and int(category) < needed:
        return int(category)
    raise ValueError(f"unknown category {category!r}; the model knows "
                     f"{names or list(range(needed))}")


def _check_size(path: Path, pos: Tensor, total: int, run, need: int) -> None:
    """Refuse fewer than ``need`` distinct points among ``pos`` (the points kept of
    ``total``: FPS keeps every distinct position before a copy); warn far from the training
    size."""
    n, trained = pos.shape[0], run.data.num_points
    distinct = int(torch.unique(pos, dim=0).shape[0])
    if distinct < need:
        copies = (f" ({total} points, {total - distinct} of them copies)" if distinct < total
                  else "")
        raise ValueError(f"{path} has {distinct} distinct points{copies}; {run.model_name} "
                         f"{_why(run, need)} and needs at least {need} (it was trained on "
                         f"clouds of {trained})")
    if n * SIZE_FACTOR < trained:
        warnings.warn(f"{path} has {n} points, fewer than 1/{SIZE_FACTOR} of the {trained} "
                      f"{run.model_name} was trained on: each point's {need} neighbours "
                      "span more of the shape than in training; treat the answer with "
                      "caution", CloudWarning, stacklevel=3)
    elif n > trained * SIZE_FACTOR:
        warnings.warn(f"the model reads {n} points of {path}, more than {SIZE_FACTOR} times "
                      f"the {trained} it was trained on: each point's {need} neighbours span "
                      "a much smaller part of the shape than in training; lower --max-points "
                      f"(default {default_max_points(trained)})", CloudWarning, stacklevel=3)


def downsample(pos: Tensor, num: int, sampling: str = "auto") -> tuple[Tensor, str]:
    """At most ``num`` rows of ``pos`` chosen by ``sampling`` (see the module), and how.

    Shape:
        pos: [N, 3] -> [S] (ascending), S <= num
    """
    from pcattn.ops import farthest_point_sample

    n = pos.shape[0]
    if sampling == "fps" or (sampling == "auto" and n <= FPS_LIMIT * num):
        return farthest_point_sample(pos, num=num), "farthest point sampling"
    if sampling == "voxel":
        keep, side = voxel_sample(pos, num)
        return keep, f"a voxel grid ({side}^3 cells, one point per occupied cell)"
    first, side = voxel_sample(pos, VOXEL_FIRST * num)
    keep = first[farthest_point_sample(pos[first], num=num)]
    return keep.sort().values, (f"a voxel grid ({side}^3 cells: {first.numel()} points) then "
                                "farthest point sampling")


def voxel_sample(pos: Tensor, num: int) -> tuple[Tensor, int]:
    """One point (the first in order) per occupied cell of the finest cubic grid over the
    cloud's bounding cube with at most ``num`` occupied cells, and the cells per side.

    Shape:
        pos: [N, 3] -> [S] (ascending), S <= num
    """
    lo = pos.min(0).values.double()  # [3]
    span = float((pos.max(0).values.double() - lo).max())
    rel = (pos.double() - lo) / max(span, 1e-300)  # [N, 3] in [0, 1]

    def cells(side: int) -> tuple[Tensor, int]:
        key = (rel * side).long().clamp_(0, side - 1)  # [N, 3]
        flat = (key[:, 0] * side + key[:, 1]) * side + key[:, 2]  # [N]
        ids, inverse = torch.unique(flat, return_inverse=True)
        return inverse, ids.numel()

    low, high = 1, _MAX_CELLS_PER_SIDE  # cells(low) <= num; find the largest such side
    while low < high:
        mid = (low + high + 1) // 2
        if cells(mid)[1] <= num:
            low = mid
        else:
            high = mid - 1
    inverse, count = cells(low)
    order = torch.arange(pos.shape[0], device=pos.device)
    first = torch.full((count,), pos.shape[0], dtype=torch.long, device=pos.device)
    first.scatter_reduce_(0, inverse, order, reduce="amin")  # [S]
    return first.sort().values, low


def propagate(values: Tensor, sampled: Tensor, pos: Tensor) -> Tensor:
    """Per-point ``values`` of the ``sampled`` points carried to every point of ``pos``: each
    takes the value of its nearest sampled point.

    Shape:
        values: [S, ...], sampled: [S, 3], pos: [N, 3] -> [N, ...]
    """
    from pcattn.ops import knn

    nearest = knn(sampled, 1, query=pos)[:, 0]  # [N]
    return values[nearest]
