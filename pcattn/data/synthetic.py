"""The embedded default data: clouds sampled from open3d's mesh primitives.

``SyntheticShapes`` is a classification set (one primitive per cloud, random anisotropic
scale, rotation and noise); ``SyntheticParts`` a part-segmentation set of composite objects
with a category per object and a part label per point, part ids disjoint across categories
as in ShapeNetPart. Both are deterministic by seed and cached under ``root``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data

from pcattn.data.cache import cache_key, load_or_build
from pcattn.data.geometry import normalize_unit_sphere, sample_surface

SHAPE_CLASSES = ("box", "sphere", "cylinder", "cone", "torus", "tetrahedron",
                 "octahedron", "icosahedron", "arrow", "mobius")

# category -> its part names; part ids are global, in this order
PART_CATEGORIES = {
    "arrow": ("shaft", "head"),
    "table": ("top", "legs"),
    "lamp": ("base", "pole", "shade"),
    "mushroom": ("stem", "cap"),
}


def part_ids() -> dict[str, list[int]]:
    """Category -> the global part ids of its parts (disjoint across categories)."""
    out, nxt = {}, 0
    for cat, parts in PART_CATEGORIES.items():
        out[cat] = list(range(nxt, nxt + len(parts)))
        nxt += len(parts)
    return out


def category_part_mask() -> torch.Tensor:
    """``mask[c, p]`` is True where part ``p`` belongs to category ``c``.
    Shape: [num_categories, num_parts]."""
    ids = part_ids()
    mask = torch.zeros(len(ids), sum(len(p) for p in ids.values()), dtype=torch.bool)
    for c, parts in enumerate(ids.values()):
        mask[c, parts] = True
    return mask


def _primitive(name: str, rng: np.random.Generator):
    import open3d as o3d

    g = o3d.geometry.TriangleMesh
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    if name == "box":
        return g.create_box(u(0.5, 1.5), u(0.5, 1.5), u(0.5, 1.5))
    if name == "sphere":
        return g.create_sphere(radius=1.0, resolution=20)
    if name == "cylinder":
        return g.create_cylinder(radius=u(0.3, 0.6), height=u(1.2, 2.0), resolution=24)
    if name == "cone":
        return g.create_cone(radius=u(0.5, 0.9), height=u(1.0, 2.0), resolution=24)
    if name == "torus":
        return g.create_torus(torus_radius=1.0, tube_radius=u(0.2, 0.4))
    if name == "tetrahedron":
        return g.create_tetrahedron()
    if name == "octahedron":
        return g.create_octahedron()
    if name == "icosahedron":
        return g.create_icosahedron()
    if name == "arrow":
        return g.create_arrow(cylinder_radius=u(0.08, 0.15), cone_radius=u(0.25, 0.35),
                              cylinder_height=u(1.2, 1.8), cone_height=u(0.4, 0.7))
    if name == "mobius":
        return g.create_mobius(length_split=60, width_split=8, twists=1, radius=1.0,
                               width=u(0.4, 0.8))
    raise ValueError(f"unknown shape {name!r}; known: {SHAPE_CLASSES}")


def _composite(category: str, rng: np.random.Generator) -> list:
    """Meshes of one composite object, one per part, in the order of its part names."""
    import open3d as o3d

    g = o3d.geometry.TriangleMesh
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    if category == "arrow":
        h, r = u(1.0, 1.6), u(0.06, 0.12)
        shaft = g.create_cylinder(radius=r, height=h).translate((0, 0, h / 2))
        head = g.create_cone(radius=u(0.2, 0.35), height=u(0.3, 0.6)).translate((0, 0, h))
        return [shaft, head]
    if category == "table":
        w, d, t, h = u(1.0, 1.6), u(0.6, 1.2), u(0.05, 0.12), u(0.6, 1.0)
        top = g.create_box(w, d, t).translate((-w / 2, -d / 2, h))
        legs = g()
        for sx in (-1, 1):
            for sy in (-1, 1):
                legs += g.create_cylinder(radius=0.05, height=h).translate(
                    (sx * (w / 2 - 0.08), sy * (d / 2 - 0.08), h / 2))
        return [top, legs]
    if category == "lamp":
        hb, hp = u(0.05, 0.15), u(0.8, 1.4)
        base = g.create_cylinder(radius=u(0.25, 0.4), height=hb).translate((0, 0, hb / 2))
        pole = g.create_cylinder(radius=0.03, height=hp).translate((0, 0, hb + hp / 2))
        shade = g.create_cone(radius=u(0.3, 0.5), height=u(0.3, 0.5)).translate(
            (0, 0, hb + hp - 0.2))
        return [base, pole, shade]
    if category == "mushroom":
        hs = u(0.4, 0.9)
        stem = g.create_cylinder(radius=u(0.08, 0.2), height=hs).translate((0, 0, hs / 2))
        cap = g.create_sphere(radius=1.0, resolution=16)
        cap.scale(1.0, center=(0, 0, 0))
        v = np.asarray(cap.vertices) * np.array([u(0.4, 0.6), u(0.4, 0.6), u(0.2, 0.35)])
        cap.vertices = o3d.utility.Vector3dVector(v + np.array([0, 0, hs]))
        return [stem, cap]
    raise ValueError(f"unknown category {category!r}; known: {list(PART_CATEGORIES)}")


def sample_meshes(meshes: list, num_points: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points uniformly by area over several open3d meshes
    (:func:`~pcattn.data.geometry.sample_surface` on their union); returns xyz, normals and
    the index of the mesh each point lies on."""
    vertices, faces, owner, offset = [], [], [], 0
    for i, mesh in enumerate(meshes):
        v, f = np.asarray(mesh.vertices), np.asarray(mesh.triangles)
        vertices.append(v)
        faces.append(f + offset)
        owner.append(np.full(len(f), i))
        offset += len(v)
    xyz, normals, face = sample_surface(np.concatenate(vertices), np.concatenate(faces),
                                        num_points, rng)
    return xyz, normals, np.concatenate(owner)[face]


def random_rotation(rng: np.random.Generator, kind: str = "so3") -> np.ndarray:
    """A random rotation: uniform in SO(3) (QR of a Gaussian matrix), or about z."""
    if kind == "z":
        a = rng.uniform(0, 2 * np.pi)
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    if kind != "so3":
        raise ValueError(f"rotation must be 'z' or 'so3', got {kind!r}")
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _finish(xyz, normals, rng, *, scale_range, noise, rotation
            ) -> tuple[np.ndarray, np.ndarray]:
    """Random anisotropic scale and rotation, jitter, then centre and unit-sphere scale."""
    scale = rng.uniform(*scale_range, size=3)
    rot = random_rotation(rng, rotation)
    xyz = (xyz * scale) @ rot.T
    normals = normals / scale  # normals transform by the inverse transpose
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True) @ rot.T
    xyz = xyz + rng.normal(scale=noise, size=xyz.shape)
    xyz = normalize_unit_sphere(xyz)
    return xyz.astype(np.float32), normals.astype(np.float32)


class _SyntheticSet(torch.utils.data.Dataset):
    """Clouds built once from meshes, cached under ``root/synthetic``, optionally transformed.

    Subclasses name their groups (classes or categories), the meshes of one object and the
    ``Data`` made of its sampled points.
    """

    kind: str
    names: tuple[str, ...]
    stream: int  # the train split draws from seed stream ``stream``, the test one the next

    def __init__(self, root, split: str, *, num_points: int, per_class: int, seed: int,
                 noise: float, scale_range: tuple[float, float], rotation: str,
                 transform: Callable | None) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.options = dict(kind=self.kind, version=1, split=split, num_points=num_points,
                            per_class=per_class, seed=seed, noise=noise,
                            scale_range=list(scale_range), rotation=rotation)

        def build() -> list[Data]:
            rng = np.random.default_rng([seed, self.stream + (split != "train")])
            items = []
            for label, name in enumerate(self.names):
                for _ in range(per_class):
                    xyz, nrm, owner = sample_meshes(self._meshes(name, rng), num_points, rng)
                    xyz, nrm = _finish(xyz, nrm, rng, scale_range=scale_range, noise=noise,
                                       rotation=rotation)
                    items.append(self._item(label, name, torch.from_numpy(xyz),
                                            torch.from_numpy(nrm), torch.from_numpy(owner)))
            return items

        self.path = Path(root) / "synthetic" / f"{self.kind}_{split}_{cache_key(self.options)}.pt"
        self.items: list[Data] = load_or_build(self.path, build, options=self.options)
        self.transform = transform

    def _meshes(self, name: str, rng: np.random.Generator) -> list:
        raise NotImplementedError

    def _item(self, label: int, name: str, pos, normals, owner) -> Data:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> torch.Tensor:
        """Class (classification) or category (segmentation) of each cloud. Shape: [S]."""
        return torch.tensor([int(d.category if "category" in d else d.y) for d in self.items],
                            dtype=torch.long)

    def __getitem__(self, i: int) -> Data:
        data = self.items[i].clone()
        return self.transform(data) if self.transform is not None else data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options['split']!r}, {len(self)} clouds)"


class SyntheticShapes(_SyntheticSet):
    """Classification clouds of ``len(SHAPE_CLASSES)`` primitive shapes.

    Args:
        root: folder for the cache (``data/`` by default in the CLI).
        split: ``"train"`` or ``"test"`` (drawn from different seeds).
        num_points: points per cloud, sampled by surface area.
        per_class: clouds per class.
        seed: base seed; same seed, same clouds.
        noise: standard deviation of the Gaussian jitter, in unit-sphere units.
        scale_range: range of the random per-axis scale.
        rotation: ``"z"`` (about the up axis, as ModelNet's shapes are aligned) or ``"so3"``
            (arbitrary orientation, a much harder task for non-invariant networks).

    Items are ``Data(pos [N, 3], x [N, 3] normals, y [1])``.
    """

    kind, names, stream = "shapes", SHAPE_CLASSES, 0
    classes = SHAPE_CLASSES
    num_classes = len(SHAPE_CLASSES)

    def __init__(self, root="data", split: str = "train", *, num_points: int = 512,
                 per_class: int = 100, seed: int = 0, noise: float = 0.01,
                 scale_range: tuple[float, float] = (0.6, 1.4), rotation: str = "so3",
                 transform: Callable | None = None) -> None:
        super().__init__(root, split, num_points=num_points, per_class=per_class, seed=seed,
                         noise=noise, scale_range=scale_range, rotation=rotation,
                         transform=transform)

    def _meshes(self, name, rng):
        return [_primitive(name, rng)]

    def _item(self, label, name, pos, normals, owner):
        return Data(pos=pos, x=normals, y=torch.tensor([label]))


class SyntheticParts(_SyntheticSet):
    """Part-segmentation clouds of composite objects (``PART_CATEGORIES``).

    Items are ``Data(pos [N, 3], x [N, 3] normals, y [N] global part id, category [1])``;
    ``part_mask [num_categories, num_classes]`` says which parts each category has.
    Arguments as for :class:`SyntheticShapes`, ``per_class`` objects per category.
    """

    kind, names, stream = "parts", tuple(PART_CATEGORIES), 2
    categories = tuple(PART_CATEGORIES)
    num_classes = sum(len(p) for p in PART_CATEGORIES.values())
    num_categories = len(PART_CATEGORIES)

    @property
    def part_mask(self) -> torch.Tensor:
        return category_part_mask()

    def __init__(self, root="data", split: str = "train", *, num_points: int = 512,
                 per_class: int = 100, seed: int = 0, noise: float = 0.005,
                 scale_range: tuple[float, float] = (0.8, 1.2), rotation: str = "so3",
                 transform: Callable | None = None) -> None:
        self._ids = part_ids()
        super().__init__(root, split, num_points=num_points, per_class=per_class, seed=seed,
                         noise=noise, scale_range=scale_range, rotation=rotation,
                         transform=transform)

    def _meshes(self, name, rng):
        return _composite(name, rng)

    def _item(self, label, name, pos, normals, owner):
        y = torch.tensor(self._ids[name], dtype=torch.long)[owner]  # [N] global part ids
        return Data(pos=pos, x=normals, y=y, category=torch.tensor([label]))
