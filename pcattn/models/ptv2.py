"""Point Transformer V2-style networks (Wu et al. 2022): grouped vector attention stages
with FPS + kNN pooling; a classifier and a U-Net part segmenter."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.ptv2 import PTv2Config
from pcattn.models.base import Classifier, Segmenter
from pcattn.models.inputs import (
    batch_of,
    category_of,
    equal_clouds,
    num_clouds,
    point_features,
)
from pcattn.nn import (
    ClassificationHead,
    PointEmbedding,
    PTv2Block,
    SegmentationHead,
    TransitionDown,
    TransitionUp,
    global_mean_pool,
)
from pcattn.nn.attention_map import LayerAttention
from pcattn.ops.knn import knn


class _Stage(nn.Module):
    """Blocks at one resolution over a shared kNN neighbourhood."""

    def __init__(self, channels: int, depth: int, groups: int, pos_multiplier: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(PTv2Block(channels, heads=groups,
                                              pos_multiplier=pos_multiplier)
                                    for _ in range(depth))

    def forward(self, x: Tensor, pos: Tensor, idx: Tensor, where: Tensor, name: str,
                maps: list | None) -> Tensor:
        for j, block in enumerate(self.blocks):
            if maps is None:
                x = block(x, pos, idx)  # [M_s, C]
            else:
                x, amap = block(x, pos, idx, return_attention=True)  # weights [M_s, K, G]
                maps.append(LayerAttention(f"{name}.{j}", amap, where, where))
        return x


class PTv2Encoder(nn.Module):
    """Point embedding, then per stage: FPS + kNN pooling (after the first) and blocks.

    Returns every level's ``x, pos, batch, idx`` and ``where`` (indices of the level's
    points in the input), coarsest last.
    """

    def __init__(self, cfg: PTv2Config) -> None:
        super().__init__()
        self.config = cfg
        self.embed = PointEmbedding(3 + cfg.feature_channels, cfg.channels[0])
        self.pools = nn.ModuleList(
            TransitionDown(c_in, c, ratio=cfg.ratio, k=cfg.k)
            for c_in, c in zip(cfg.channels[:-1], cfg.channels[1:]))
        self.stages = nn.ModuleList(
            _Stage(c, d, g, cfg.pos_multiplier)
            for c, d, g in zip(cfg.channels, cfg.depths, cfg.groups))

    def forward(self, data, maps: list | None) -> list[dict]:
        pos, batch, b = data.pos, batch_of(data), equal_clouds(data)
        x = self.embed(point_features(data, self.config.feature_channels))  # [M, C0]
        where = torch.arange(pos.shape[0], device=pos.device)  # [M]
        levels = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                # the centres' neighbourhoods are rows of the stage before's
                x, pos, batch, sample = self.pools[i - 1](x, pos, batch, neighbors=idx,
                                                          equal_clouds=b)
                where = where[sample]  # [S]
            idx = knn(pos, self.config.k, batch, equal_clouds=b)  # [M_i, K]
            x = stage(x, pos, idx, where, f"encoder.{i}", maps)  # [M_i, C_i]
            levels.append({"x": x, "pos": pos, "batch": batch, "idx": idx, "where": where})
        return levels


class PTv2Cls(Classifier):
    """PTv2-style classifier: :class:`PTv2Encoder`, mean pooling (as PTv2's classifier) and
    an MLP head.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    encoder_class = PTv2Encoder

    def __init__(self, config: PTv2Config) -> None:
        super().__init__()
        self.config = config
        self.encoder = self.encoder_class(config)
        self.norm = nn.LayerNorm(config.channels[-1])
        self.head = ClassificationHead(config.channels[-1], config.num_classes,
                                       hidden_channels=config.head_hidden,
                                       dropout=config.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``pooled [B, C_last]``, ``levels`` (per stage ``x, pos, batch, idx, where``; see
        the encoder) and, if asked, ``attention``."""
        maps = [] if return_attention else None
        levels = self.encoder(data, maps)
        last = levels[-1]
        out = {"pooled": global_mean_pool(self.norm(last["x"]), last["batch"],
                                          num_clouds=num_clouds(data)), "levels": levels}
        if return_attention:
            out["attention"] = maps
        return out


class PTv2Seg(Segmenter):
    """PTv2-style part segmenter: :class:`PTv2Encoder` and a U-Net decoder.

    Each decoder stage interpolates the coarser level onto the finer one and adds the
    finer encoder features (:class:`~pcattn.nn.TransitionUp`), then runs
    ``decoder_depth`` blocks on the finer level's neighbourhoods; the head sees each
    point's feature and the one-hot object category.

    A U-Net of other stages (PTv3's) overrides ``encoder_class``, ``_up``,
    ``_decoder_stage`` and ``_decode``.

    Shape:
        data.pos: [M, 3], data.x: [M, F], data.batch: [M], data.category: [B] (unless
        ``num_categories=0``)
        -> logits [M, num_classes]
    """

    encoder_class = PTv2Encoder

    def __init__(self, config: PTv2Config) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = self.encoder_class(cfg)
        ch = cfg.channels
        self.ups = nn.ModuleList(self._up(i) for i in range(len(ch) - 1))
        self.decoder = nn.ModuleList(self._decoder_stage(i) for i in range(len(ch) - 1))
        self.norm = nn.LayerNorm(ch[0])
        self.head = SegmentationHead(ch[0], cfg.num_classes,
                                     num_categories=cfg.num_categories or None,
                                     hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def _up(self, i: int) -> nn.Module:
        """How decoder stage ``i`` brings level ``i + 1`` up to level ``i``."""
        ch = self.config.channels
        return TransitionUp(ch[i + 1], ch[i])

    def _decoder_stage(self, i: int) -> nn.Module:
        """The blocks of decoder stage ``i``, at level ``i``."""
        cfg = self.config
        return _Stage(cfg.channels[i], cfg.decoder_depth, cfg.groups[i], cfg.pos_multiplier)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``point [M, C_0]`` (input order), ``category [B]``, ``batch [M]``, ``levels`` and,
        if asked, ``attention`` (encoder then decoder blocks)."""
        maps = [] if return_attention else None
        levels = self.encoder(data, maps)
        x = self._decode(data, levels, maps)  # [M, C_0]
        out = {"point": self.norm(x), "batch": levels[0]["batch"], "levels": levels,
               "category": (category_of(data, self.config.num_categories)
                            if self.config.num_categories else None)}
        if return_attention:
            out["attention"] = maps
        return out

    def _decode(self, data, levels: list[dict], maps: list | None) -> Tensor:
        """The decoder stages, coarsest first, from the last level's ``x`` to ``[M, C_0]``."""
        x = levels[-1]["x"]
        for i in reversed(range(len(self.ups))):
            coarse, fine = levels[i + 1], levels[i]
            x = self.ups[i](x, coarse["pos"], coarse["batch"], x_skip=fine["x"],
                            query=fine["pos"], query_batch=fine["batch"],
                            equal_clouds=equal_clouds(data))  # [M_i, C_i]
            x = self.decoder[i](x, fine["pos"], fine["idx"], fine["where"], f"decoder.{i}",
                                maps)  # [M_i, C_i]
        return x
