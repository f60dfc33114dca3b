"""Datasets by name, built from a :class:`DataConfig` (the ``data:`` section of a run)."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset


@dataclass
class DataConfig:
    """Which dataset and how it is read."""

    name: str = "synthetic_shapes"
    root: str = "data"
    num_points: int = 512
    per_class: int = 100  # synthetic data only: clouds per class in the train split
    use_normals: bool = True  # feed normals as data.x
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; available: {sorted(DATASETS)}")
        if self.num_points < 1 or self.per_class < 1:
            raise ValueError("data.num_points and data.per_class must be >= 1, got "
                             f"{self.num_points}, {self.per_class}")


def _synthetic_shapes(cfg: DataConfig, split: str) -> Dataset:
    from pcattn.data.synthetic import SyntheticShapes

    per_class = cfg.per_class if split == "train" else max(1, cfg.per_class * 3 // 10)
    return SyntheticShapes(cfg.root, split, num_points=cfg.num_points, per_class=per_class,
                           seed=cfg.seed, transform=None if cfg.use_normals else _drop_x)


def _synthetic_parts(cfg: DataConfig, split: str) -> Dataset:
    from pcattn.data.synthetic import SyntheticParts

    per_class = cfg.per_class if split == "train" else max(1, cfg.per_class * 3 // 10)
    return SyntheticParts(cfg.root, split, num_points=cfg.num_points, per_class=per_class,
                          seed=cfg.seed, transform=None if cfg.use_normals else _drop_x)


def _drop_x(data):
    data.x = None
    return data


DATASETS = {
    "synthetic_shapes": _synthetic_shapes,
    "synthetic_parts": _synthetic_parts,
}


def build_dataset(cfg: DataConfig, split: str) -> Dataset:
    """The ``split`` (``"train"`` / ``"test"``) of the dataset that ``cfg`` names.

    Datasets expose ``num_classes``; classification items carry ``y [1]``, segmentation
    items ``y [N]`` and ``category [1]``.
    """
    return DATASETS[cfg.name](cfg, split)
