"""Configs of the PCT family (torch-free: a config error is reported without importing the
models)."""

from __future__ import annotations

from dataclasses import dataclass

# model.attention: PCT's offset-attention, or a global family in its offset form
ATTENTION = ("offset", "full", "linear", "induced", "anchor", "cluster", "sinkhorn")


@dataclass
class PCTConfig:
    """Hyper-parameters of the PCT family; YAML ``model:`` keys are these.

    The defaults are a small PCT; ``PCTBaseConfig`` is the paper's size.
    """

    num_classes: int = 10  # classes, or all parts for segmentation (filled from the data)
    num_categories: int = 16  # segmentation: object categories (0: none; filled from the data)
    feature_channels: int = 0  # extra channels in data.x (3 for normals; filled from the data)
    embed_channels: int = 32  # H: first embedding of the neighbour embedding (PCT: 64)
    channels: int = 64  # C: attention width (PCT: 256)
    layers: int = 4  # stacked offset-attention layers
    ratios: tuple[float, float] = (0.5, 0.5)  # points kept by the two sample-and-group stages
    k: int = 16  # neighbours grouped per centre (PCT: 32)
    fuse_channels: int = 256  # width after concatenating the layers (PCT: 1024)
    category_channels: int = 64  # segmentation: width of the category embedding
    head_hidden: tuple[int, ...] = (128,)  # PCT: (512, 256)
    dropout: float = 0.5
    # initial gain of each offset-attention layer's LayerNorm (LayerScale-like): with 1.0
    # every layer adds a unit-variance ReLU vector to every point, which swamps the
    # embedding and left 256-wide PCT at chance on a fixed batch; 0.1 lets it learn
    residual_init: float = 0.1
    # the global attention of each layer: PCT's own ("offset") or y = x + LBR(x - A(x)) with
    # A one of the families of `pcattn bench attention` (4 heads; channels divisible by 4)
    attention: str = "offset"

    def __post_init__(self) -> None:
        self.ratios, self.head_hidden = tuple(self.ratios), tuple(self.head_hidden)
        if len(self.ratios) != 2 or not all(0 < r <= 1 for r in self.ratios):
            raise ValueError(f"ratios must be two fractions in (0, 1], got {self.ratios}")
        if self.attention not in ATTENTION:
            raise ValueError(f"unknown attention {self.attention!r}; valid: {list(ATTENTION)}")
        if self.attention != "offset" and self.channels % 4:
            raise ValueError(f"attention: {self.attention} runs 4 heads; channels must be "
                             f"divisible by 4, got {self.channels}")
        if self.num_categories < 0:
            raise ValueError(f"num_categories must be >= 0, got {self.num_categories}")
        if self.num_classes < 2 or self.layers < 1 or self.k < 1 or self.channels % 2:
            raise ValueError("need num_classes >= 2, layers >= 1, k >= 1 and an even "
                             f"channels, got {self.num_classes}, {self.layers}, {self.k}, "
                             f"{self.channels}")


@dataclass
class PCTBaseConfig(PCTConfig):
    """PCT at the paper's widths. PCT reports 2.88M parameters: its released code pools the
    max only (a 1024-wide global feature); the paper's max + mean pooling used here doubles
    the head's input, 3.40M in all."""

    embed_channels: int = 64
    channels: int = 256
    k: int = 32
    fuse_channels: int = 1024
    head_hidden: tuple[int, ...] = (512, 256)


@dataclass
class PCTSegConfig(PCTConfig):
    """PCT part segmenter: every point is a centre (no down-sampling)."""

    ratios: tuple[float, float] = (1.0, 1.0)


@dataclass
class PCTSegBaseConfig(PCTSegConfig):
    """PCT part segmenter at the paper's widths."""

    embed_channels: int = 64
    channels: int = 256
    k: int = 32
    fuse_channels: int = 1024
    head_hidden: tuple[int, ...] = (512, 256)
