"""Datasets by name, built from a :class:`DataConfig` (the ``data:`` section of a run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.utils.data import Dataset


@dataclass
class DataConfig:
    """Which dataset and how it is read."""

    name: str = "synthetic_shapes"
    root: str = "data"
    num_points: int = 512
    per_class: int = 100  # synthetic data only: clouds per class in the train split
    rotation: str = "so3"  # synthetic data only: "so3" (any orientation) or "z" (up axis)
    scenes: int = 16  # synthetic_scenes: rooms in train (test: a quarter, at least 2)
    scene_points: int = 100_000  # synthetic_scenes: points per room (train crops num_points)
    grid_sample: float = 0.0  # synthetic_scenes, > 0: train on one random point per cell (m)
    use_normals: bool = True  # feed normals as data.x
    seed: int = 0
    val_fraction: float = 0.0  # > 0: hold this fraction of each train class out as "val"
    # real datasets (modelnet40, modelnet10, shapenetpart, folder)
    layout: str = "auto"  # or a layout kind (pcattn.data.layouts.LAYOUTS), e.g. "modelnet_off"
    sampling: str = "auto"  # cut point layouts to num_points: "first" | "random" | "fps"
    normalize: bool = True  # centre + unit sphere, once, in the cache
    augment: str = ""  # transform preset (pcattn.data.transforms.PRESETS), "" for none
    categories: tuple = ()  # shapenetpart: keep only these categories (names or synsets)
    cache_dir: str = ""  # default: <layout folder>/pcattn_cache
    skip_bad: bool = False  # skip (and list) unreadable files instead of stopping
    split_file: str = ""  # folder: json {"train": [...], "test": [...]}; default root/split.json
    test_ratio: float = 0.2  # folder: per-class test fraction when there is no split given
    graph: str = ""  # modelnet OFF layout: "mesh" reads each mesh as a graph (its vertices, edges)

    def __post_init__(self) -> None:
        from pcattn.data.layouts import LAYOUTS
        from pcattn.data.options import PRESET_NAMES, SAMPLINGS

        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; available: {sorted(DATASETS)}")
        if self.num_points < 1 or self.per_class < 1:
            raise ValueError("data.num_points and data.per_class must be >= 1, got "
                             f"{self.num_points}, {self.per_class}")
        if not self.grid_sample >= 0:
            raise ValueError(f"data.grid_sample must be >= 0 (0: every point), got "
                             f"{self.grid_sample}")
        if self.scenes < 1 or self.scene_points < 1:
            raise ValueError("data.scenes and data.scene_points must be >= 1, got "
                             f"{self.scenes}, {self.scene_points}")
        if self.name == "synthetic_scenes" and self.val_fraction > 0:
            raise ValueError("data.val_fraction: synthetic_scenes trains on crops and has no "
                             "held-out rooms; its test split (whole rooms, other seeds) is the "
                             "one to select on: set data.val_fraction: 0")
        if self.rotation not in ("z", "so3"):
            raise ValueError(f"data.rotation must be 'z' or 'so3', got {self.rotation!r}")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ValueError(f"data.layout must be 'auto' or one of {list(LAYOUTS)}, got "
                             f"{self.layout!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"data.sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.augment and self.augment not in PRESET_NAMES:
            raise ValueError(f"data.augment must be '' or one of {sorted(PRESET_NAMES)}, got "
                             f"{self.augment!r}")
        if self.graph not in ("", "mesh"):
            raise ValueError(f"data.graph must be '' (point clouds) or 'mesh', got {self.graph!r}")
        if self.graph and self.name not in ("modelnet40", "modelnet10"):
            raise ValueError(f"data.graph: mesh reads ModelNet's OFF meshes; data.name is "
                             f"{self.name!r}: use modelnet40 or modelnet10, or data.graph: ''")
        if not 0.0 < self.test_ratio < 1.0:
            raise ValueError(f"data.test_ratio must be in (0, 1), got {self.test_ratio}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


def _synthetic(kind: str):
    def build(cfg: DataConfig, split: str, progress: bool, view: str) -> Dataset:
        from pcattn.data.synthetic import SyntheticParts, SyntheticShapes

        cls = SyntheticShapes if kind == "shapes" else SyntheticParts
        per_class = cfg.per_class if split == "train" else max(1, cfg.per_class * 3 // 10)
        from pcattn.data.transforms import Compose

        augment = _augment(cfg, view)
        steps = ([] if cfg.use_normals else [_drop_normals]) + ([augment] if augment else [])
        return cls(cfg.root, split, num_points=cfg.num_points, per_class=per_class,
                   seed=cfg.seed, rotation=cfg.rotation,
                   transform=Compose(steps) if steps else None)
    return build


def _drop_normals(data):
    data.x = None
    return data


def _augment(cfg: DataConfig, split: str):
    from pcattn.data.transforms import preset

    return preset(cfg.augment, split, generator=cfg.seed) if cfg.augment else None


def _common(cfg: DataConfig, view: str, progress: bool) -> dict:
    return dict(use_normals=cfg.use_normals, normalize=cfg.normalize, seed=cfg.seed,
                cache_dir=cfg.cache_dir or None, transform=_augment(cfg, view),
                skip_bad=cfg.skip_bad, progress=progress)


def _scenes(cfg: DataConfig, split: str, progress: bool, view: str) -> Dataset:
    from pcattn.data.scenes import SyntheticScenes
    from pcattn.data.transforms import Compose

    augment = _augment(cfg, view)
    steps = ([] if cfg.use_normals else [_drop_normals]) + ([augment] if augment else [])
    train = split == "train"
    return SyntheticScenes(cfg.root, split, num_scenes=cfg.scenes if train else max(
        2, cfg.scenes // 4), scene_points=cfg.scene_points,
        crop_points=cfg.num_points if train else None,
        grid_size=cfg.grid_sample if train and cfg.grid_sample > 0 else None, seed=cfg.seed,
        transform=Compose(steps) if steps else None)


def _modelnet(variant: int):
    def build(cfg: DataConfig, split: str, progress: bool, view: str) -> Dataset:
        from pcattn.data.modelnet import ModelNet

        if cfg.graph == "mesh":
            from pcattn.data.mesh_graph import ModelNetMeshGraphs

            common = _common(cfg, view, progress)
            common.pop("seed")
            if cfg.layout not in ("auto", "modelnet_off"):
                raise ValueError(f"data.graph: mesh reads the modelnet_off layout, but "
                                 f"data.layout is {cfg.layout!r}; set data.layout: auto")
            return ModelNetMeshGraphs(cfg.root, split, variant=variant, **common)
        return ModelNet(cfg.root, split, variant=variant, num_points=cfg.num_points,
                        layout=cfg.layout, sampling=cfg.sampling,
                        **_common(cfg, view, progress))
    return build


def _shapenetpart(cfg: DataConfig, split: str, progress: bool, view: str) -> Dataset:
    from pcattn.data.shapenetpart import ShapeNetPart

    return ShapeNetPart(cfg.root, split, num_points=cfg.num_points,
                        categories=cfg.categories or None, layout=cfg.layout,
                        **_common(cfg, view, progress))


def _folder(cfg: DataConfig, split: str, progress: bool, view: str) -> Dataset:
    from pcattn.data.folder import FolderDataset

    return FolderDataset(cfg.root, split, num_points=cfg.num_points, sampling=cfg.sampling,
                         split_file=cfg.split_file or None, test_ratio=cfg.test_ratio,
                         **_common(cfg, view, progress))


# name -> build(cfg, split of the files, progress, view: the split whose transforms apply)
DATASETS = {
    "synthetic_shapes": _synthetic("shapes"),
    "synthetic_parts": _synthetic("parts"),
    "synthetic_scenes": _scenes,
    "modelnet40": _modelnet(40),
    "modelnet10": _modelnet(10),
    "shapenetpart": _shapenetpart,
    "folder": _folder,
}


SPLITS = ("train", "val", "test")
OWN_VAL_SPLIT = ("shapenetpart",)  # datasets that ship a val split of their own


def has_val_split(cfg: DataConfig) -> bool:
    """Whether ``cfg`` gives a ``"val"`` split: held out by ``data.val_fraction``, or the
    dataset's own."""
    return cfg.val_fraction > 0 or cfg.name in OWN_VAL_SPLIT


def _train_files(cfg: DataConfig, eval_split: str) -> str:
    """The split of the files ``"train"`` reads. ShapeNetPart's standard protocol trains on its
    train + val files; a run that selects on its official val split trains on train alone."""
    if cfg.name not in OWN_VAL_SPLIT:
        return "train"
    return "train" if eval_split == "val" and cfg.val_fraction == 0 else "trainval"


def build_dataset(cfg: DataConfig, split: str, *, progress: bool = False,
                  eval_split: str = "test") -> Dataset:
    """The ``split`` (``"train"``, ``"val"`` or ``"test"``) of the dataset that ``cfg`` names.

    With ``data.val_fraction > 0``, ``"val"`` is a stratified, seeded part of the training
    clouds (:func:`~pcattn.data.split.stratified_split`; a
    :class:`~pcattn.data.split.HeldOut`, with the evaluation transforms, resampled the same
    way each time) and ``"train"`` is the rest. Otherwise only a dataset with a val split of
    its own (ShapeNetPart's official one) has ``"val"``; ShapeNetPart's ``"train"`` is then
    its train + val files, or its train files alone when ``eval_split`` (the split the run
    selects its checkpoint on) is ``"val"``.

    Datasets expose ``num_classes``; classification items carry ``y [1]``, segmentation
    items ``y [N]`` and ``category [1]``. ``progress`` shows a bar while a cache is built.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {list(SPLITS)}")
    build = DATASETS[cfg.name]
    if split == "test":
        return build(cfg, "test", progress, "test")
    if cfg.val_fraction > 0:
        from pcattn.data.split import HeldOut, stratified_split

        files = _train_files(cfg, eval_split)
        source = build(cfg, files, progress, split)
        if split == "val" and hasattr(source, "fixed_resampling"):
            source.fixed_resampling = True  # evaluation data: the same points every epoch
        train, val = stratified_split(source.labels, cfg.val_fraction, seed=cfg.seed)
        return HeldOut(source, train if split == "train" else val, name=split, of=files)
    if split == "val":
        if cfg.name not in OWN_VAL_SPLIT:
            raise ValueError(f"no val split: data.val_fraction is 0 and {cfg.name!r} has no "
                             "val split of its own; set data.val_fraction (e.g. 0.1) to hold "
                             "that fraction of each class of the train split out as val")
        return build(cfg, "val", progress, "val")
    return build(cfg, _train_files(cfg, eval_split), progress, "train")
