"""Synthetic indoor scenes for semantic segmentation at scale.

A scene is a room: a floor, four walls and objects (the primitives of
:data:`~pcattn.data.synthetic.SHAPE_CLASSES`, each in its own orientation and size) standing
on the floor without touching each other. Points are drawn uniformly by area over all
surfaces, so the density is the same everywhere (about 600 points per m^2 in a room of 5-9 m
at 10^5 points), with 5 mm of jitter. Each point is labelled with its class (``SCENE_CLASSES``:
floor, wall, then the shapes) and carries its surface normal in ``x``.

Scenes are deterministic by seed and cached under ``root/synthetic`` in a compact form
(float32 positions, int8 normals, uint8 labels, int16 object ids: 18 bytes a point).
Training takes random crops (:func:`crop`, the ``crop_points`` nearest points to a random
point, as Pointcept's ``SphereCrop``), optionally of a grid sample (:func:`grid_sample`, one
random point per cell); evaluation takes whole scenes. Positions are in
metres, each cloud centred in x and y (z keeps the height above the floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data

from pcattn.data.cache import cache_key, load_or_build
from pcattn.data.synthetic import SHAPE_CLASSES, _primitive, random_rotation, sample_meshes
from pcattn.data.transforms import _Stream

SCENE_CLASSES = ("floor", "wall") + SHAPE_CLASSES
HEIGHT = 3.0  # wall height, m
# split -> (seed stream, room side range in m, objects per 10 m^2 of floor)
SPLITS = {"train": (10, (5.0, 9.0), 3.0), "test": (11, (5.0, 9.0), 3.0),
          "scale": (12, (14.0, 20.0), 3.0)}


def _objects(rng: np.random.Generator, width: float, depth: float, density: float
             ) -> tuple[list, list[int]]:
    """Shape meshes placed on the floor, their footprints' circles apart by >= 0.1 m."""
    import open3d as o3d

    placed: list[tuple[float, float, float]] = []
    meshes, labels = [], []
    for _ in range(int(round(density * width * depth / 10))):
        label = int(rng.integers(len(SHAPE_CLASSES)))
        mesh = _primitive(SHAPE_CLASSES[label], rng)
        v = np.asarray(mesh.vertices) @ random_rotation(rng, "so3").T
        v = v - (v.max(0) + v.min(0)) / 2
        v = v * (rng.uniform(0.35, 0.9) / np.linalg.norm(v[:, :2], axis=1).max())  # radius r
        r = float(np.linalg.norm(v[:, :2], axis=1).max())
        for _ in range(50):  # rejection sampling of a free spot
            cx, cy = rng.uniform(r + 0.1, width - r - 0.1), rng.uniform(r + 0.1, depth - r - 0.1)
            if all((cx - x) ** 2 + (cy - y) ** 2 >= (r + q + 0.1) ** 2 for x, y, q in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        mesh.vertices = o3d.utility.Vector3dVector(v + np.array([cx, cy, -v[:, 2].min()]))
        meshes.append(mesh)
        labels.append(2 + label)
    return meshes, labels


def _planes(rng: np.random.Generator, width: float, depth: float, n_floor: int, n_wall: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform points on the floor and on the four walls (walls unrolled along the
    perimeter), normals pointing into the room."""
    floor = np.column_stack([rng.uniform(0, width, n_floor), rng.uniform(0, depth, n_floor),
                             np.zeros(n_floor)])
    t, z = rng.uniform(0, 2 * (width + depth), n_wall), rng.uniform(0, HEIGHT, n_wall)
    edges = np.cumsum([width, depth, width])
    side = np.searchsorted(edges, t, side="right")  # 0 y=0, 1 x=width, 2 y=depth, 3 x=0
    along = t - np.concatenate([[0.0], edges])[side]
    x = np.choose(side, [along, np.full_like(t, width), width - along, np.zeros_like(t)])
    y = np.choose(side, [np.zeros_like(t), along, np.full_like(t, depth), depth - along])
    wall = np.column_stack([x, y, z])
    normal = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0],
                       [1.0, 0.0, 0.0]])[side]
    points = np.concatenate([floor, wall])
    normals = np.concatenate([np.tile([0.0, 0.0, 1.0], (n_floor, 1)), normal])
    labels = np.concatenate([np.zeros(n_floor, dtype=np.int64), np.ones(n_wall, dtype=np.int64)])
    return points, normals, labels


def make_scene(num_points: int, rng: np.random.Generator, *, sides=(5.0, 9.0),
               density: float = 3.0, noise: float = 0.005) -> Data:
    """One room of ``num_points`` points: ``Data(pos [N, 3], x [N, 3] normals, y [N],
    instance [N])`` (``instance``: 0 floor, 1 walls, 2 + the index of each object)."""
    width, depth = (float(s) for s in rng.uniform(*sides, size=2))
    meshes, labels = _objects(rng, width, depth, density)
    areas = np.array([width * depth, 2 * (width + depth) * HEIGHT]
                     + [m.get_surface_area() for m in meshes])
    counts = np.floor(num_points * areas / areas.sum()).astype(int)
    counts[0] += num_points - counts.sum()
    pos, nrm, lab = _planes(rng, width, depth, counts[0], counts[1])
    inst = np.minimum(lab, 1)
    if meshes:
        xyz, normals, owner = sample_meshes(meshes, int(counts[2:].sum()), rng)
        pos, nrm = np.concatenate([pos, xyz]), np.concatenate([nrm, normals])
        lab = np.concatenate([lab, np.asarray(labels)[owner]])
        inst = np.concatenate([inst, 2 + owner])
    pos = pos + rng.normal(scale=noise, size=pos.shape)
    return Data(pos=torch.from_numpy(pos.astype(np.float32)),
                x=torch.from_numpy(nrm.astype(np.float32)),
                y=torch.from_numpy(lab), instance=torch.from_numpy(inst))


def crop(data: Data, num_points: int, generator: torch.Generator | None = None) -> Data:
    """The ``num_points`` points nearest to a random point of the cloud (all of it when it
    is smaller), every per-point field cut alike."""
    n = data.pos.shape[0]
    if n <= num_points:
        return data
    centre = data.pos[torch.randint(n, (1,), generator=generator)]  # [1, 3]
    keep = torch.topk((data.pos - centre).square().sum(1), num_points, largest=False).indices
    keep = keep.sort().values  # [num_points]
    out = data.clone()
    for key in ("pos", "x", "y", "instance"):
        if getattr(data, key, None) is not None:
            out[key] = data[key][keep]
    return out


def grid_sample(data: Data, grid_size: float, generator: torch.Generator | None = None
                ) -> Data:
    """One point per occupied cell of a grid of ``grid_size`` (a random one: PTv3's
    ``GridSample`` in training), every per-point field cut alike.

    Shape:
        data.pos: [N, 3] -> [V, 3] for the V occupied cells
    """
    from pcattn.ops import encode, grid_coords

    coords, _, bits = grid_coords(data.pos, grid_size=grid_size)
    code = encode(coords, bits=bits)  # [N], one code per cell
    shuffle = torch.randperm(code.numel(), generator=generator)
    cell, first = torch.unique(code[shuffle], return_inverse=True)
    keep = torch.full_like(cell, code.numel()).scatter_reduce(
        0, first, torch.arange(code.numel()), "amin")  # [V] first of each cell, shuffled
    keep = shuffle[keep].sort().values
    out = data.clone()
    for key in ("pos", "x", "y", "instance"):
        if getattr(data, key, None) is not None:
            out[key] = data[key][keep]
    return out


def _centre(data: Data) -> Data:
    lo, hi = data.pos.amin(0), data.pos.amax(0)
    data.pos = data.pos - torch.cat([(lo[:2] + hi[:2]) / 2, lo.new_zeros(1)])
    return data


class SyntheticScenes(torch.utils.data.Dataset):
    """Rooms for semantic segmentation (see the module docstring).

    Args:
        root: folder for the cache.
        split: ``"train"``, ``"test"`` (other seeds) or ``"scale"`` (rooms of 14-20 m).
        num_scenes: rooms in the split.
        scene_points: points per room.
        crop_points: ``None``: whole rooms; else a random crop of that many points per item
            (seeded by ``seed``, a new crop at every access).
        grid_size: > 0: before the crop, one random point per cell of this size
            (:func:`grid_sample`); ``None``: every point.
        seed: base seed; same seed, same rooms.
        transform: applied to each item after the crop.

    Items are ``Data(pos [N, 3], x [N, 3] normals, y [N] class)``; ``num_classes`` classes
    named ``classes``, no object category (``num_categories = 0``).
    """

    classes = SCENE_CLASSES
    num_classes = len(SCENE_CLASSES)
    num_categories = 0

    def __init__(self, root="data", split: str = "train", *, num_scenes: int = 16,
                 scene_points: int = 100_000, crop_points: int | None = None,
                 grid_size: float | None = None, seed: int = 0,
                 transform: Callable | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        stream, sides, density = SPLITS[split]
        self.options = dict(kind="scenes", version=1, split=split, num_scenes=num_scenes,
                            scene_points=scene_points, seed=seed)

        def build() -> list[dict]:
            rng = np.random.default_rng([seed, stream])
            return [_pack(make_scene(scene_points, rng, sides=sides, density=density))
                    for _ in range(num_scenes)]

        self.path = Path(root) / "synthetic" / f"scenes_{split}_{cache_key(self.options)}.pt"
        self.items = load_or_build(self.path, build, options=self.options)
        self.crop_points, self.grid_size, self.transform = crop_points, grid_size, transform
        self._crops = _Stream(seed)  # reseeded in each DataLoader worker

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Data:
        data = _unpack(self.items[i])
        if self.grid_size:
            data = grid_sample(data, self.grid_size, self._crops.get())
        if self.crop_points is not None:
            data = crop(data, self.crop_points, self._crops.get())
        del data.instance
        data = _centre(data)
        return self.transform(data) if self.transform is not None else data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options['split']!r}, {len(self)} scenes)"


def _pack(data: Data) -> dict:
    return {"pos": data.pos, "x": (data.x * 127).round().to(torch.int8),
            "y": data.y.to(torch.uint8), "instance": data.instance.to(torch.int16)}


def _unpack(item: dict) -> Data:
    x = item["x"].float() / 127
    return Data(pos=item["pos"].clone(), x=x / x.norm(dim=1, keepdim=True).clamp(min=1e-6),
                y=item["y"].long(), instance=item["instance"].long())
