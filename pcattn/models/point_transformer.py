"""Point Transformer classifier (Zhao et al. 2021), assembled from pcattn.nn blocks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pcattn.models.registry import register_model
from pcattn.nn import (
    ClassificationHead,
    PointEmbedding,
    PointTransformerBlock,
    TransitionDown,
    global_max_pool,
    global_mean_pool,
)
from pcattn.ops.knn import knn


@dataclass
class PointTransformerConfig:
    """Hyper-parameters of the Point Transformer family; YAML ``model:`` keys are these."""

    num_classes: int = 10  # `pcattn train` fills it in from the data
    in_channels: int = 0  # extra features in ``data.x`` (3 for normals); filled in likewise
    channels: tuple[int, ...] = (32, 64, 128)  # one stage each; stages after the first downsample
    blocks: tuple[int, ...] = (1, 1, 1)  # Point Transformer blocks per stage
    k: int = 16  # neighbours for attention and for transition down
    ratio: float = 0.25  # points kept by each transition down
    pool: str = "max"  # global pooling: "max" or "mean"
    head_hidden: tuple[int, ...] = (128,)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        self.channels, self.blocks = tuple(self.channels), tuple(self.blocks)
        self.head_hidden = tuple(self.head_hidden)
        if len(self.channels) != len(self.blocks) or not self.channels:
            raise ValueError(f"channels {self.channels} and blocks {self.blocks} must be "
                             "non-empty and of the same length (one entry per stage)")
        if self.pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {self.pool!r}")
        if self.num_classes < 2 or self.k < 1 or not 0 < self.ratio <= 1:
            raise ValueError("need num_classes >= 2, k >= 1 and 0 < ratio <= 1, got "
                             f"{self.num_classes}, {self.k}, {self.ratio}")


@register_model("point_transformer_cls", PointTransformerConfig,
                paper="Zhao et al. 2021, Point Transformer")
class PointTransformerCls(nn.Module):
    """Point Transformer classifier: embedding, stages of (transition down + blocks),
    global pooling and an MLP head.

    ``forward_features`` returns per-stage outputs and the pooled feature;
    ``forward_head(feat, pre_logits=)`` maps it to logits; ``forward(data)`` does both.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    def __init__(self, config: PointTransformerConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.embed = PointEmbedding(3 + cfg.in_channels, cfg.channels[0])
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (c, n) in enumerate(zip(cfg.channels, cfg.blocks)):
            self.downs.append(nn.Identity() if i == 0 else
                              TransitionDown(cfg.channels[i - 1], c, ratio=cfg.ratio, k=cfg.k))
            self.stages.append(nn.ModuleList(PointTransformerBlock(c) for _ in range(n)))
        self.head = ClassificationHead(cfg.channels[-1], cfg.num_classes,
                                       hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """Run the backbone.

        Returns a dict with ``"pooled" [B, C]`` and ``"stages"``: per stage a dict of
        ``x, pos, batch, idx`` and, with ``return_attention=True``, ``attention`` (a list of
        ``[M_s, K, C_s]`` weights, one per block) and ``sample`` (indices into the
        previous stage's nodes).
        """
        pos, batch = data.pos, _batch_of(data)
        feats = pos if getattr(data, "x", None) is None else torch.cat([pos, data.x], -1)
        if feats.shape[1] != 3 + self.config.in_channels:
            raise ValueError(f"the model expects {self.config.in_channels} extra feature "
                             f"channels in data.x, got {feats.shape[1] - 3}; set "
                             "model.in_channels to match the data")
        x = self.embed(feats)  # [M, C0]
        stages = []
        for i, (down, blocks) in enumerate(zip(self.downs, self.stages)):
            sample = None
            if i > 0:
                x, pos, batch, sample = down(x, pos, batch)  # [S, C_i]
            idx = knn(pos, self.config.k, batch)  # [M_i, K]
            attn = []
            for block in blocks:
                if return_attention:
                    x, w = block(x, pos, idx, return_attention=True)  # w: [M_i, K, C_i]
                    attn.append(w)
                else:
                    x = block(x, pos, idx)  # [M_i, C_i]
            stage = {"x": x, "pos": pos, "batch": batch, "idx": idx, "sample": sample}
            if return_attention:
                stage["attention"] = attn
            stages.append(stage)
        num_clouds = int(data.num_graphs) if hasattr(data, "num_graphs") else None
        pool = global_max_pool if self.config.pool == "max" else global_mean_pool
        return {"pooled": pool(x, batch, num_clouds), "stages": stages}

    def forward_head(self, pooled: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(pooled, pre_logits=pre_logits)

    def forward(self, data) -> Tensor:
        return self.forward_head(self.forward_features(data)["pooled"])


def _batch_of(data) -> Tensor:
    batch = getattr(data, "batch", None)
    if batch is None:
        return torch.zeros(data.pos.shape[0], dtype=torch.long, device=data.pos.device)
    return batch
