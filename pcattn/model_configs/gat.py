"""Configs of the graph attention networks (torch-free: a config error is reported without
importing the models)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphAttentionConfig:
    """Hyper-parameters of the graph attention network; YAML ``model:`` keys are these."""

    num_classes: int = 10  # classes, or all parts for segmentation; filled from the data
    num_categories: int = 0  # segmentation: object categories for the one-hot (0: none)
    feature_channels: int = 0  # extra features in data.x (3 for normals); filled likewise
    channels: tuple[int, ...] = (32, 64, 64)  # output width of each graph attention block
    heads: int = 4
    k: int = 16  # neighbours of the kNN graph (inputs without edge_index)
    edge_features: bool = True  # relative position p_j - p_i as an edge feature
    self_loops: bool = True  # each node also attends to itself on a given graph
    attn_dropout: float = 0.0  # dropout on the attention weights (training only)
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        self.channels, self.head_hidden = tuple(self.channels), tuple(self.head_hidden)
        if not self.channels or any(c % self.heads for c in self.channels):
            raise ValueError(f"channels {self.channels} must be non-empty and each divisible "
                             f"by heads={self.heads}")
        if self.num_classes < 2 or self.k < 1 or self.heads < 1:
            raise ValueError("need num_classes >= 2, k >= 1 and heads >= 1, got "
                             f"{self.num_classes}, {self.k}, {self.heads}")
        if self.num_categories < 0 or self.feature_channels < 0:
            raise ValueError("num_categories and feature_channels must be >= 0, got "
                             f"{self.num_categories}, {self.feature_channels}")


@dataclass
class GraphAttentionBaseConfig(GraphAttentionConfig):
    """Close to the inductive GAT of Velickovic et al. (ICLR 2018, PPI: three layers of
    4 heads x 256 channels, about 3.6 M parameters with its head)."""

    channels: tuple[int, ...] = (256, 512, 1024)
    head_hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.5
