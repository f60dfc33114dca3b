"""Point Transformer part segmenter (Zhao et al. 2021), assembled from pcattn.nn blocks."""

from __future__ import annotations

from torch import nn

from pcattn.model_configs.point_transformer import PointTransformerSegConfig
from pcattn.models.base import Segmenter
from pcattn.models.inputs import batch_of, equal_clouds, point_features
from pcattn.models.point_transformer import PointTransformerEncoder, stage_attention
from pcattn.nn import LayerAttention, PointTransformerBlock, SegmentationHead, TransitionUp


class PointTransformerSeg(Segmenter):
    """Point Transformer segmenter (Zhao et al., ICCV 2021, Fig. 3, top): the classifier's
    :class:`~pcattn.models.point_transformer.PointTransformerEncoder`; a decoder that goes
    back up stage by stage with a :class:`~pcattn.nn.TransitionUp` (interpolation of the
    coarse features plus the encoder's skip features at the finer stage) followed by Point
    Transformer blocks on that stage's neighbourhoods; and a per-point
    :class:`~pcattn.nn.SegmentationHead` fed the one-hot object category of each cloud, as
    ShapeNetPart models do.

    ``forward_features(data, return_attention=False)`` returns ``{"point": [M, C0]}`` (and
    ``"attention"``: a :class:`~pcattn.nn.attention_map.LayerAttention` per block, encoder
    then decoder, in forward order); ``forward_head(point, category, batch, pre_logits=)``
    maps the point features to part logits; ``forward(data)`` does both.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M], data.category: [B]
        -> logits [M, num_classes]
    """

    def __init__(self, config: PointTransformerSegConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = PointTransformerEncoder(3 + cfg.feature_channels, cfg.channels,
                                               cfg.blocks, k=cfg.k, ratio=cfg.ratio)
        # decoder stage i brings stage i + 1 up to stage i
        self.ups = nn.ModuleList(TransitionUp(cfg.channels[i + 1], cfg.channels[i], k=cfg.up_k)
                                 for i in range(len(cfg.channels) - 1))
        self.decoders = nn.ModuleList(
            nn.ModuleList(PointTransformerBlock(cfg.channels[i])
                          for _ in range(cfg.decoder_blocks))
            for i in range(len(cfg.channels) - 1))
        self.head = SegmentationHead(cfg.channels[0], cfg.num_classes,
                                     num_categories=cfg.num_categories or None,
                                     hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """Per-point features ``"point" [M, C0]``; with ``return_attention`` also
        ``"attention"``: list of ``LayerAttention`` (local maps on each stage's kNN, with
        ``query_index`` = ``source_index`` = the stage's points as indices into the input)."""
        cfg = self.config
        feats = point_features(data, cfg.feature_channels)  # [M, 3 + F]
        b = equal_clouds(data)
        stages = self.encoder(feats, data.pos, batch_of(data), return_attention=return_attention,
                              equal_clouds=b)
        maps = stage_attention(stages) if return_attention else []
        x = stages[-1]["x"]
        for i in reversed(range(len(self.ups))):
            fine, coarse = stages[i], stages[i + 1]
            x = self.ups[i](x, coarse["pos"], coarse["batch"], x_skip=fine["x"],
                            query=fine["pos"], query_batch=fine["batch"],
                            equal_clouds=b)  # [M_i, C_i]
            for j, block in enumerate(self.decoders[i]):
                if return_attention:
                    x, amap = block(x, fine["pos"], fine["idx"], return_attention=True)
                    maps.append(LayerAttention(f"decoder.{i}.{j}", amap, fine["index"],
                                               fine["index"]))
                else:
                    x = block(x, fine["pos"], fine["idx"])  # [M_i, C_i]
        out = {"point": x}
        if return_attention:
            out["attention"] = maps
        return out
