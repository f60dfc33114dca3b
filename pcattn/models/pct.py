"""PCT: Point Cloud Transformer (Guo et al. 2021), classifier and part segmenter."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.pct import PCTConfig
from pcattn.models.global_stage import OffsetStage, global_attention
from pcattn.models.base import Classifier, Segmenter
from pcattn.models.inputs import (
    batch_of,
    category_of,
    equal_clouds,
    num_clouds,
    point_features,
)
from pcattn.models.renamed import accept_old_prefix
from pcattn.nn import (
    ClassificationHead,
    NeighborEmbedding,
    OffsetAttention,
    SegmentationHead,
    global_max_pool,
    global_mean_pool,
    mlp,
)
from pcattn.nn.attention_map import LayerAttention


class PCTEncoder(nn.Module):
    """PCT's encoder: neighbour embedding, offset-attention layers, concatenation, fuse.

    ``NeighborEmbedding`` (two sample-and-group stages), two ``Linear, LayerNorm, ReLU``
    layers, ``layers`` stacked :class:`~pcattn.nn.OffsetAttention` blocks whose outputs are
    concatenated with the embedding and fused by ``Linear, LayerNorm, LeakyReLU(0.2)``, as
    in PCT's code (``conv_fuse``), LayerNorm instead of BatchNorm. The LayerNorm inside
    each offset-attention layer starts at gain ``residual_init`` (see the config): a
    per-point norm gives every point's update the same size, where PCT's BatchNorm kept
    the differences between points and clouds.

    Shape:
        data.pos: [M, 3], data.x: [M, F] -> point features [S, F_fuse] on the S points the
        embedding keeps (``sample [S]`` indexes them in the input)
    """

    def __init__(self, cfg: PCTConfig) -> None:
        super().__init__()
        self.config = cfg
        c = cfg.channels
        self.embed = NeighborEmbedding(3 + cfg.feature_channels, c,
                                       hidden_channels=cfg.embed_channels, ratios=cfg.ratios,
                                       k=cfg.k)
        self.pre = mlp([c, c, c], last_act=True)
        self.attention = nn.ModuleList(
            OffsetAttention(c) if cfg.attention == "offset" else
            OffsetStage(global_attention(cfg.attention, c), c) for _ in range(cfg.layers))
        for layer in self.attention:
            nn.init.constant_(layer.lbr[1].weight, cfg.residual_init)  # LBR's LayerNorm gain
        self.fuse = nn.Sequential(nn.Linear((cfg.layers + 1) * c, cfg.fuse_channels),
                                  nn.LayerNorm(cfg.fuse_channels), nn.LeakyReLU(0.2))

    def forward(self, data, return_attention: bool = False) -> dict:
        """``x [S, F_fuse]``, ``batch [S]``, ``sample [S]`` and, if asked, ``attention``."""
        batch, b = batch_of(data), equal_clouds(data)
        feats = point_features(data, self.config.feature_channels)  # [M, 3 + F]
        x, _, batch_s, sample = self.embed(feats, data.pos, batch, equal_clouds=b)  # [S, C]
        pos = data.pos[sample]  # [S, 3]
        h, outs, maps = self.pre(x), [], []
        # PCT's own layers take the equal-size layout; the global families read batch
        equal = {"equal_clouds": b} if self.config.attention == "offset" else {}
        for i, layer in enumerate(self.attention):
            if return_attention:
                h, amap = layer(h, batch_s, pos=pos, return_attention=True)
                maps.append(LayerAttention(f"offset_attention.{i}", amap, sample, sample))
            else:
                h = layer(h, batch_s, pos=pos, **equal)  # [S, C]
            outs.append(h)
        out = {"x": self.fuse(torch.cat(outs + [x], dim=-1)), "batch": batch_s,
               "sample": sample}  # x: [S, F_fuse]
        if return_attention:
            out["attention"] = maps
        return out


def _max_mean(x: Tensor, batch: Tensor, b: int) -> Tensor:
    """PCT's global feature: max and mean pooling, concatenated. Shape: [M, C] -> [B, 2C]."""
    return torch.cat([global_max_pool(x, batch, num_clouds=b),
                      global_mean_pool(x, batch, num_clouds=b)], dim=-1)


class PCTCls(Classifier):
    """PCT classifier: :class:`PCTEncoder`, max + mean pooling, an MLP head.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    def __init__(self, config: PCTConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = PCTEncoder(config)
        accept_old_prefix(self, "backbone.", "encoder.")
        self.head = ClassificationHead(2 * config.fuse_channels, config.num_classes,
                                       hidden_channels=config.head_hidden,
                                       dropout=config.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """The encoder's dict (``x``, ``batch``, ``sample``, ``attention``) plus
        ``pooled [B, 2 F_fuse]``."""
        out = self.encoder(data, return_attention)
        out["pooled"] = _max_mean(out["x"], out["batch"], num_clouds(data))
        return out


class PCTSeg(Segmenter):
    """PCT part segmenter, as in the paper's segmentation network.

    Every point is kept (``ratios=(1, 1)``: the sample-and-group stages group around
    every point), the global max + mean feature and a ``category_channels`` embedding of
    the object category are broadcast back and concatenated to each point's feature, and
    a per-point MLP head predicts the parts.

    Shape:
        data.pos: [M, 3], data.x: [M, F], data.batch: [M], data.category: [B] (unless
        ``num_categories=0``)
        -> logits [M, num_classes]
    """

    def __init__(self, config: PCTConfig) -> None:
        super().__init__()
        if config.ratios != (1.0, 1.0):
            raise ValueError(f"pct_seg predicts every point and keeps them all (PCT's "
                             f"segmentation network does not down-sample); got ratios="
                             f"{config.ratios}, leave it at (1.0, 1.0)")
        self.config = cfg = config
        self.encoder = PCTEncoder(cfg)
        accept_old_prefix(self, "backbone.", "encoder.")
        cat_channels = cfg.category_channels if cfg.num_categories else 0
        self.category = (mlp([cfg.num_categories, cat_channels], last_act=True)
                         if cfg.num_categories else None)
        self.head = SegmentationHead(3 * cfg.fuse_channels + cat_channels,
                                     cfg.num_classes, hidden_channels=cfg.head_hidden,
                                     dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """The encoder's dict plus ``point [M, 3 F_fuse + C_cat]``: each point's feature,
        its cloud's max + mean feature and its category embedding."""
        out = self.encoder(data, return_attention)
        x, batch, b = out["x"], out["batch"], num_clouds(data)
        glob = _max_mean(x, batch, b)  # [B, 2 F_fuse]
        if self.category is not None:
            category = category_of(data, self.config.num_categories)  # [B]
            one_hot = nn.functional.one_hot(category, self.config.num_categories).to(x.dtype)
            glob = torch.cat([glob, self.category(one_hot)], dim=-1)  # [B, 2 F_fuse + C_cat]
        out["point"] = torch.cat([x, glob[batch]], dim=-1)  # [M, 3 F_fuse + C_cat]
        return out

    def forward_head(self, point: Tensor, category: Tensor | None, batch: Tensor, *,
                     pre_logits: bool = False) -> Tensor:
        """As every segmenter's; ``point`` holds the category already (its embedding, from
        :meth:`forward_features`), so ``category`` is not read."""
        return self.head(point, batch, pre_logits=pre_logits)
