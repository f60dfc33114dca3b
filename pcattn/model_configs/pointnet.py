"""Configs of PointNet, the no-attention reference (torch-free: a config error is reported
without importing the models)."""

from __future__ import annotations

from dataclasses import dataclass

NORMS = ("batch", "layer")


@dataclass
class PointNetConfig:
    """Hyper-parameters of the PointNet classifier; YAML ``model:`` keys are these.

    The defaults are the paper's classification network without T-Nets (its "vanilla"
    PointNet): shared per-point layers 64-64-64-128-1024, a max pool, a 512-256 head.
    """

    num_classes: int = 10  # `pcattn train` fills it in from the data
    feature_channels: int = 0  # extra channels in data.x (3 for normals); filled likewise
    channels: tuple[int, ...] = (64, 64, 64, 128, 1024)  # shared per-point layers; the last
    # is max-pooled into the global feature
    norm: str = "batch"  # per-point layers: "batch" (BatchNorm over all points) or "layer"
    bn_momentum: float = 0.5  # norm="batch": weight of each batch in the running statistics
    tnet: bool = False  # a T-Net predicts a 3 x 3 transform of each cloud's xyz first
    head_hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.4

    def __post_init__(self) -> None:
        self.channels, self.head_hidden = tuple(self.channels), tuple(self.head_hidden)
        if not self.channels or min(self.channels) < 1 or min(self.head_hidden, default=1) < 1:
            raise ValueError(f"channels {self.channels} must be non-empty and, like "
                             f"head_hidden {self.head_hidden}, hold positive widths")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {self.norm!r}")
        if not 0 < self.bn_momentum <= 1:
            raise ValueError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if self.num_classes < 2 or self.feature_channels < 0 or not 0 <= self.dropout < 1:
            raise ValueError("need num_classes >= 2, feature_channels >= 0 and "
                             f"0 <= dropout < 1, got {self.num_classes}, "
                             f"{self.feature_channels}, {self.dropout}")


@dataclass
class PointNetSegConfig(PointNetConfig):
    """PointNet part segmenter: every per-point layer but the last, the cloud's global
    feature and the one-hot object category, concatenated per point, then a per-point MLP
    512-256-128."""

    num_classes: int = 50  # parts over all categories; filled in from the data
    num_categories: int = 16  # object categories for the head's one-hot (0: none); filled in
    head_hidden: tuple[int, ...] = (512, 256, 128)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_categories < 0:
            raise ValueError(f"num_categories must be >= 0, got {self.num_categories}")
