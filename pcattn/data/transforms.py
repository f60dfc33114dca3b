"""Composable, seeded transforms on ``Data`` clouds, and the usual recipes as presets.

Every random transform draws from a ``torch.Generator``: one passed to the call, else its
own (made from ``generator=<seed>`` or given as a ``torch.Generator``), else torch's global
RNG. A seeded transform reseeds itself inside each DataLoader worker from the worker's
seed, so workers do not repeat each other's augmentations and a run is reproducible.
``data.x`` with 3 columns is taken to be the normals: they follow rotations and scales.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from pcattn.data.geometry import normalize_unit_sphere

GeneratorLike = torch.Generator | int | None


class _Stream:
    """A generator from a seed, reseeded once per DataLoader worker (and per epoch)."""

    def __init__(self, seed: int) -> None:
        self.seed, self.worker_seed, self.gen = int(seed), None, None

    def get(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        wseed = None if info is None else int(info.seed)
        if self.gen is None or wseed != self.worker_seed:
            mixed = self.seed if wseed is None else hash((self.seed, wseed)) & (2**63 - 1)
            self.gen, self.worker_seed = torch.Generator().manual_seed(mixed), wseed
        return self.gen


class Transform:
    """Base class: ``__call__(data, generator=None) -> data``; subclasses write ``forward``."""

    def __init__(self, *, generator: GeneratorLike = None) -> None:
        self._own = generator if isinstance(generator, torch.Generator) else None
        self._stream = _Stream(generator) if isinstance(generator, int) else None

    def __call__(self, data: Data, generator: torch.Generator | None = None) -> Data:
        if generator is None:
            generator = self._own if self._own is not None else (
                self._stream.get() if self._stream is not None else None)
        return self.forward(data, generator)

    def forward(self, data: Data, generator: torch.Generator | None) -> Data:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, all drawing from one generator (seeded by ``generator``)."""

    def __init__(self, transforms: Sequence[Callable], *, generator: GeneratorLike = None
                 ) -> None:
        super().__init__(generator=generator)
        self.transforms = list(transforms)

    def forward(self, data: Data, generator: torch.Generator | None) -> Data:
        for t in self.transforms:
            data = t(data, generator) if isinstance(t, Transform) else t(data)
        return data


def generators(transform) -> list[torch.Generator]:
    """The generators of the seeded transforms in ``transform`` (a tree of :class:`Compose`),
    in order: what a training run saves and restores to resume its augmentation exactly."""
    if not isinstance(transform, Transform):
        return []
    own = transform._own if transform._own is not None else (
        transform._stream.get() if transform._stream is not None else None)
    found = [] if own is None else [own]
    for t in getattr(transform, "transforms", []):
        found += generators(t)
    return found


def _normals(data: Data) -> Tensor | None:
    x = getattr(data, "x", None)
    if x is None or x.dim() != 2 or x.size(1) != 3:
        return None
    return x


def _uniform(shape, low, high, generator) -> Tensor:
    return torch.rand(shape, generator=generator) * (high - low) + low


def subset(data: Data, idx: Tensor) -> Data:
    """Keep the points ``idx`` (with repeats allowed) in every per-point attribute.

    A graph's ``edge_index`` (and per-edge attributes) keeps the edges whose two ends are
    kept, renumbered; a repeated point takes the edges at its first copy only.
    """
    n = data.num_nodes
    out = data.clone()
    if getattr(data, "edge_index", None) is not None:
        new = torch.full((n,), -1, dtype=torch.long)
        new[idx.flip(0)] = torch.arange(idx.numel() - 1, -1, -1)  # first copy wins
        ends = new[data.edge_index]  # [2, E]
        keep = (ends >= 0).all(0)  # [E]
        for key, value in data:
            if _per_edge(key, value, keep.numel()):
                out[key] = value[keep]
        out.edge_index = ends[:, keep]
    num_edges = data.edge_index.shape[1] if getattr(data, "edge_index", None) is not None else -1
    for key, value in data:
        if key == "edge_index" or _per_edge(key, value, num_edges):
            continue
        if not isinstance(value, Tensor) or value.dim() == 0 or value.size(0) != n:
            continue
        if key == "category" or (key == "y" and value.numel() == 1 and n != 1):
            continue  # per-cloud labels
        out[key] = value[idx]
    return out


def _per_edge(key: str, value, num_edges: int) -> bool:
    """An edge attribute: named ``edge_*`` (PyG's convention) with one row per edge."""
    return (key.startswith("edge_") and key != "edge_index" and isinstance(value, Tensor)
            and value.dim() > 0 and value.size(0) == num_edges)


class NormalizeUnitSphere(Transform):
    """Centre on the mean and scale the farthest point to radius 1 (normals unchanged)."""

    def forward(self, data, generator):
        data.pos = normalize_unit_sphere(data.pos)
        return data


class RandomScale(Transform):
    """Scale by factors from ``U(low, high)``, per axis if ``anisotropic``."""

    def __init__(self, low: float = 0.8, high: float = 1.25, *, anisotropic: bool = True,
                 generator: GeneratorLike = None) -> None:
        super().__init__(generator=generator)
        self.low, self.high, self.anisotropic = low, high, anisotropic

    def forward(self, data, generator):
        s = _uniform(3 if self.anisotropic else 1, self.low, self.high, generator)
        s = s.expand(3).to(data.pos)
        data.pos = data.pos * s
        nrm = _normals(data)
        if nrm is not None:  # normals transform by the inverse transpose
            nrm = nrm / s
            data.x = nrm / nrm.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return data


class RandomTranslate(Transform):
    """Shift the cloud by a vector from ``U(-shift, shift)^3``."""

    def __init__(self, shift: float = 0.1, *, generator: GeneratorLike = None) -> None:
        super().__init__(generator=generator)
        self.shift = shift

    def forward(self, data, generator):
        data.pos = data.pos + _uniform(3, -self.shift, self.shift, generator).to(data.pos)
        return data


def random_rotation_matrix(generator: torch.Generator | None = None) -> Tensor:
    """A rotation drawn uniformly from SO(3): a unit quaternion from a normalised 4-D
    Gaussian (uniform on S^3), as a float64 matrix. Shape: [3, 3]."""
    w, x, y, z = torch.nn.functional.normalize(
        torch.randn(4, generator=generator, dtype=torch.float64), dim=0).tolist()
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float64)


def axis_rotation_matrix(angle: float, axis: str) -> Tensor:
    """Rotation by ``angle`` radians about ``axis`` (``"x"``, ``"y"`` or ``"z"``)."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = torch.eye(3, dtype=torch.float64)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


class RandomRotate(Transform):
    """Rotate about ``axis`` by an angle from ``U(-max_angle, max_angle)``, or, with
    ``axis=None``, by a uniform rotation of SO(3). ModelNet's up axis is ``"y"``."""

    def __init__(self, axis: str | None = "y", max_angle: float = math.pi, *,
                 generator: GeneratorLike = None) -> None:
        super().__init__(generator=generator)
        if axis not in ("x", "y", "z", None):
            raise ValueError(f"axis must be 'x', 'y', 'z' or None (SO(3)), got {axis!r}")
        self.axis, self.max_angle = axis, max_angle

    def forward(self, data, generator):
        if self.axis is None:
            rot = random_rotation_matrix(generator)
        else:
            angle = float(_uniform(1, -self.max_angle, self.max_angle, generator))
            rot = axis_rotation_matrix(angle, self.axis)
        rot = rot.to(data.pos.dtype)
        data.pos = data.pos @ rot.T
        nrm = _normals(data)
        if nrm is not None:
            data.x = nrm @ rot.T
        return data


class Jitter(Transform):
    """Add Gaussian noise ``N(0, sigma^2)`` per coordinate, clipped to ``[-clip, clip]``."""

    def __init__(self, sigma: float = 0.01, clip: float = 0.05, *,
                 generator: GeneratorLike = None) -> None:
        super().__init__(generator=generator)
        self.sigma, self.clip = sigma, clip

    def forward(self, data, generator):
        noise = torch.randn(data.pos.shape, generator=generator) * self.sigma
        data.pos = data.pos + noise.clamp(-self.clip, self.clip).to(data.pos)
        return data


class RandomDropout(Transform):
    """Drop a fraction ``U(0, max_ratio)`` of the points (PointNet++'s point dropout).

    With ``keep_size`` the dropped points are replaced by copies of the first kept one, so
    ``N`` is unchanged, as PointNet++ does; otherwise they are removed.
    """

    def __init__(self, max_ratio: float = 0.875, *, keep_size: bool = False,
                 generator: GeneratorLike = None) -> None:
        super().__init__(generator=generator)
        if not 0.0 <= max_ratio < 1.0:
            raise ValueError(f"max_ratio must be in [0, 1), got {max_ratio}")
        self.max_ratio, self.keep_size = max_ratio, keep_size

    def forward(self, data, generator):
        n = data.num_nodes
        ratio = float(torch.rand(1, generator=generator)) * self.max_ratio
        drop = torch.rand(n, generator=generator) < ratio  # [N]
        if drop.all():
            drop[0] = False
        if self.keep_size:
            idx = torch.arange(n)
            idx[drop] = int(torch.nonzero(~drop)[0])
        else:
            idx = torch.nonzero(~drop).flatten()
        return subset(data, idx)


class Shuffle(Transform):
    """Permute the points (and every per-point attribute) at random."""

    def forward(self, data, generator):
        return subset(data, torch.randperm(data.num_nodes, generator=generator))


class Resample(Transform):
    """Resample to exactly ``num`` points: ``"random"`` (without replacement where the
    cloud has enough points) or ``"fps"`` (farthest point sampling from a random start,
    topped up at random when the cloud is smaller)."""

    def __init__(self, num: int, method: str = "random", *, generator: GeneratorLike = None
                 ) -> None:
        super().__init__(generator=generator)
        if method not in ("random", "fps"):
            raise ValueError(f"method must be 'random' or 'fps', got {method!r}")
        if num < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        self.num, self.method = num, method

    def forward(self, data, generator):
        n = data.num_nodes
        if n >= self.num and self.method == "fps":
            from pcattn.ops import farthest_point_sample

            idx = farthest_point_sample(data.pos, num=self.num, random_start=True,
                                        generator=generator)
        elif n >= self.num:
            idx = torch.randperm(n, generator=generator)[: self.num]
        else:
            extra = torch.randint(n, (self.num - n,), generator=generator)
            idx = torch.cat([torch.randperm(n, generator=generator), extra])
        return subset(data, idx)


# name -> split -> recipe; "train" augments, "test" only prepares.
def _modelnet(split: str, g: GeneratorLike) -> Compose:
    """PointNet++ ModelNet: anisotropic scale 0.8-1.25, shift 0.1, shuffle."""
    if split != "train":
        return Compose([], generator=g)
    return Compose([RandomScale(0.8, 1.25), RandomTranslate(0.1), Shuffle()], generator=g)


def _modelnet_dgcnn(split: str, g: GeneratorLike) -> Compose:
    """DGCNN / PCT ModelNet: anisotropic scale 2/3-3/2, shift 0.2, shuffle."""
    if split != "train":
        return Compose([], generator=g)
    return Compose([RandomScale(2 / 3, 3 / 2), RandomTranslate(0.2), Shuffle()], generator=g)


def _modelnet_so3(split: str, g: GeneratorLike) -> Compose:
    """Rotation-robustness protocol: uniform SO(3) rotation (train and test), jitter."""
    if split != "train":
        return Compose([RandomRotate(None)], generator=g)
    return Compose([RandomRotate(None), RandomScale(0.8, 1.25), Jitter(0.01, 0.05),
                    Shuffle()], generator=g)


def _shapenetpart(split: str, g: GeneratorLike) -> Compose:
    """PointNet++ part segmentation: anisotropic scale 0.8-1.25, shift 0.1."""
    if split != "train":
        return Compose([], generator=g)
    return Compose([RandomScale(0.8, 1.25), RandomTranslate(0.1)], generator=g)


PRESETS: dict[str, Callable[[str, GeneratorLike], Compose]] = {
    "modelnet": _modelnet,
    "modelnet_dgcnn": _modelnet_dgcnn,
    "modelnet_so3": _modelnet_so3,
    "shapenetpart": _shapenetpart,
}


def preset(name: str, split: str = "train", *, generator: GeneratorLike = None) -> Compose:
    """The named recipe for ``split`` (augmentation for ``"train"``, none or the
    evaluation protocol's for other splits). Names: see ``PRESETS``."""
    if name not in PRESETS:
        raise ValueError(f"unknown transform preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name](split, generator)
