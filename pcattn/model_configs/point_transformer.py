"""Configs of the Point Transformer classifier and segmenter (torch-free: a config error is
reported without importing the models)."""

from __future__ import annotations

from dataclasses import dataclass

from pcattn.model_configs.stages import check_stages


@dataclass
class PointTransformerConfig:
    """Hyper-parameters of the Point Transformer family; YAML ``model:`` keys are these."""

    num_classes: int = 10  # `pcattn train` fills it in from the data
    feature_channels: int = 0  # width of ``data.x`` beyond xyz (3 for normals); filled in likewise
    channels: tuple[int, ...] = (32, 64, 128)  # one stage each; stages after the first downsample
    blocks: tuple[int, ...] = (1, 1, 1)  # Point Transformer blocks per stage
    k: int = 16  # neighbours for attention and for transition down
    ratio: float = 0.25  # points kept by each transition down
    pool: str = "max"  # global pooling: "max" or "mean"
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        check_stages(self)
        if self.pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {self.pool!r}")
        if self.num_classes < 2 or self.k < 1 or not 0 < self.ratio <= 1:
            raise ValueError("need num_classes >= 2, k >= 1 and 0 < ratio <= 1, got "
                             f"{self.num_classes}, {self.k}, {self.ratio}")


@dataclass
class PointTransformerSegConfig:
    """Hyper-parameters of the Point Transformer segmenter; YAML ``model:`` keys are these."""

    num_classes: int = 50  # parts over all categories; `pcattn train` fills it in from the data
    num_categories: int = 16  # object categories for the head's one-hot (0: none); filled in
    feature_channels: int = 0  # extra features in ``data.x`` (3 for normals); filled in
    channels: tuple[int, ...] = (32, 64, 128, 256)  # encoder stages; the decoder mirrors them
    blocks: tuple[int, ...] = (1, 1, 1, 1)  # Point Transformer blocks per encoder stage
    decoder_blocks: int = 1  # Point Transformer blocks after each transition up
    k: int = 16  # neighbours for attention and for transition down
    ratio: float = 0.25  # points kept by each transition down
    up_k: int = 3  # coarse neighbours interpolated by each transition up
    head_hidden: tuple[int, ...] = (64,)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_stages(self)
        if (self.num_classes < 2 or self.num_categories < 0 or self.feature_channels < 0
                or self.decoder_blocks < 0 or self.k < 1 or self.up_k < 1
                or not 0 < self.ratio <= 1):
            raise ValueError("need num_classes >= 2, num_categories, feature_channels and "
                             "decoder_blocks >= 0, k, up_k >= 1 and 0 < ratio <= 1, got "
                             f"{self.num_classes}, {self.num_categories}, "
                             f"{self.feature_channels}, {self.decoder_blocks}, {self.k}, "
                             f"{self.up_k}, {self.ratio}")
