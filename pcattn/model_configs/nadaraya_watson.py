"""Configs of the Nadaraya-Watson baseline (torch-free: a config error is reported without
importing the models)."""

from __future__ import annotations

from dataclasses import dataclass

from pcattn.model_configs.stages import check_stages


@dataclass
class NadarayaWatsonConfig:
    """Hyper-parameters of the Nadaraya-Watson baseline; YAML ``model:`` keys are these.

    The architecture fields mirror :class:`~pcattn.model_configs.point_transformer.PointTransformerConfig`.
    """

    num_classes: int = 10  # classes, or all parts for segmentation; filled from the data
    num_categories: int = 0  # segmentation: object categories for the one-hot (0: none)
    feature_channels: int = 0  # extra features in data.x (3 for normals); filled likewise
    channels: tuple[int, ...] = (32, 64, 128)  # one stage each; stages after the first downsample
    blocks: tuple[int, ...] = (1, 1, 1)  # kernel blocks per stage (per decoder level too)
    k: int = 16  # neighbours of the kernel blocks and of transition down
    ratio: float = 0.25  # points kept by each transition down
    sigma: float = 1.0  # bandwidth, in units of each stage's neighbourhood scale
    learn_sigma: bool = False  # learn each kernel's bandwidth (initialised to sigma)
    interp_k: int = 3  # segmentation: coarse points each fine point reads in the decoder
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        check_stages(self)
        if self.num_classes < 2 or self.k < 1 or self.interp_k < 1 or not 0 < self.ratio <= 1:
            raise ValueError("need num_classes >= 2, k >= 1, interp_k >= 1 and 0 < ratio <= 1, "
                             f"got {self.num_classes}, {self.k}, {self.interp_k}, {self.ratio}")
        if self.sigma <= 0 or self.num_categories < 0 or self.feature_channels < 0:
            raise ValueError("need sigma > 0 and num_categories, feature_channels >= 0, got "
                             f"{self.sigma}, {self.num_categories}, {self.feature_channels}")


@dataclass
class NadarayaWatsonBaseConfig(NadarayaWatsonConfig):
    """The paper-sized baseline: Point Transformer's five stages (32-512 channels, blocks
    1-2-3-5-2 as its 38-layer segmentation network)."""

    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    blocks: tuple[int, ...] = (1, 2, 3, 5, 2)
    head_hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
