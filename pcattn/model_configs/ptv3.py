"""Configs of the PTv3-style family (torch-free: a config error is reported without importing
the models)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pcattn.model_configs.stages import check_split_stages

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")  # as pcattn.ops.ORDERS
POS_ENCODINGS = ("grid", "knn", "none")


@dataclass
class PTv3Config:
    """Hyper-parameters of the PTv3-style family; YAML ``model:`` keys are these.

    Stage ``i`` works at width ``channels[i]`` with ``heads[i]`` heads and ``depths[i]``
    blocks of serialized patch attention; every stage after the first starts by pooling
    onto the grid twice as coarse. Block ``j`` of a stage attends in the order
    ``orders[j % len(orders)]`` (the list shuffled at every training forward when
    ``shuffle_orders``). The segmenter's decoder goes back up through the same widths with
    ``decoder_depth`` blocks per stage.
    """

    num_classes: int = 10  # classes, or all parts for segmentation (filled from the data)
    num_categories: int = 16  # segmentation: object categories (0: none; filled from the data)
    feature_channels: int = 0  # extra channels in data.x (3 for normals; filled from the data)
    channels: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (1, 1, 1)
    heads: tuple[int, ...] = (2, 4, 8)
    decoder_depth: int = 1  # segmentation: blocks per decoder stage
    patch_size: int = 64  # points per attention patch
    grid_size: float | None = None  # cell size of the first stage; None: each cloud's spacing
    orders: tuple[str, ...] = ORDERS
    shuffle_orders: bool = True
    pos_encoding: str = "grid"  # "grid" (submanifold conv), "knn" (point conv) or "none"
    mlp_ratio: int = 4
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_split_stages(self, "heads")
        self.orders = tuple(self.orders)
        if not self.orders or any(o not in ORDERS for o in self.orders):
            raise ValueError(f"orders must be a non-empty list of {list(ORDERS)}, got "
                             f"{list(self.orders)}")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"pos_encoding must be one of {list(POS_ENCODINGS)}, got "
                             f"{self.pos_encoding!r}")
        if self.grid_size is not None and not (math.isfinite(self.grid_size)
                                               and self.grid_size > 0):
            raise ValueError(f"grid_size must be a number > 0 or null (each cloud's point "
                             f"spacing), got {self.grid_size}")
        if (self.num_classes < 2 or self.num_categories < 0 or self.feature_channels < 0
                or self.patch_size < 1 or self.mlp_ratio < 1 or self.decoder_depth < 0):
            raise ValueError("need num_classes >= 2, num_categories, feature_channels and "
                             "decoder_depth >= 0, patch_size and mlp_ratio >= 1, got "
                             f"{self.num_classes}, {self.num_categories}, "
                             f"{self.feature_channels}, {self.decoder_depth}, "
                             f"{self.patch_size}, {self.mlp_ratio}")


@dataclass
class PTv3BaseConfig(PTv3Config):
    """Near PTv3's published network: widths 32-512, depths 2-2-2-6-2, patches of 1024
    points (a GPU's size; the CPU-sized default is 64), decoder blocks 2 per stage."""

    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    depths: tuple[int, ...] = (2, 2, 2, 6, 2)
    heads: tuple[int, ...] = (2, 4, 8, 16, 32)
    decoder_depth: int = 2
    patch_size: int = 1024
    head_hidden: tuple[int, ...] = (256, 128)
