"""Configs of the PTv2-style family (torch-free: a config error is reported without importing
the models)."""

from __future__ import annotations

from dataclasses import dataclass

from pcattn.model_configs.stages import check_split_stages


@dataclass
class PTv2Config:
    """Hyper-parameters of the PTv2-style family; YAML ``model:`` keys are these.

    Stage ``i`` works at width ``channels[i]`` with ``groups[i]`` attention groups and
    ``depths[i]`` blocks; every stage after the first starts with an FPS + kNN pooling
    keeping ``ratio`` of the points. The segmenter's decoder goes back up through the same
    widths with ``decoder_depth`` blocks per stage.
    """

    num_classes: int = 10  # classes, or all parts for segmentation (filled from the data)
    num_categories: int = 16  # segmentation: object categories (0: none; filled from the data)
    feature_channels: int = 0  # extra channels in data.x (3 for normals; filled from the data)
    channels: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1)
    groups: tuple[int, ...] = (4, 8, 16)
    decoder_depth: int = 1  # segmentation: blocks per decoder stage
    k: int = 16  # neighbours for attention and pooling
    ratio: float = 0.25  # points kept by each pooling
    pos_multiplier: bool = True  # PTv2's position-encoding multiplier
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_split_stages(self, "groups")
        if self.num_categories < 0:
            raise ValueError(f"num_categories must be >= 0, got {self.num_categories}")
        if self.num_classes < 2 or self.k < 1 or not 0 < self.ratio <= 1:
            raise ValueError("need num_classes >= 2, k >= 1 and 0 < ratio <= 1, got "
                             f"{self.num_classes}, {self.k}, {self.ratio}")


@dataclass
class PTv2BaseConfig(PTv2Config):
    """PTv2's published encoder (ScanNet ``PT-v2m2``): widths 96-512, depths 2-2-6-2, after
    a 48-wide full-resolution stage."""

    channels: tuple[int, ...] = (48, 96, 192, 384, 512)
    depths: tuple[int, ...] = (1, 2, 2, 6, 2)
    groups: tuple[int, ...] = (6, 12, 24, 48, 64)
    head_hidden: tuple[int, ...] = (256, 128)
