"""Point Transformer backbone and classifier (Zhao et al. 2021), assembled from pcattn.nn
blocks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.point_transformer import PointTransformerConfig
from pcattn.models.base import Classifier
from pcattn.models.inputs import batch_of, equal_clouds, num_clouds, point_features
from pcattn.nn import (
    ClassificationHead,
    LayerAttention,
    PointEmbedding,
    PointTransformerBlock,
    TransitionDown,
    global_max_pool,
    global_mean_pool,
)
from pcattn.ops.knn import knn


class PointTransformerEncoder(nn.Module):
    """The Point Transformer backbone (Zhao et al., ICCV 2021, Fig. 3): an embedding, then
    stages of (transition down + Point Transformer blocks); the first stage keeps every point.
    Shared by the classifier and the segmenter.

    Args:
        in_channels: input features per point (``3 + F``: xyz and ``data.x``).
        channels: width of each stage.
        blocks: Point Transformer blocks per stage.
        k: neighbours for attention and for transition down.
        ratio: points kept by each transition down.

    ``forward`` returns one dict per stage: ``x [M_s, C_s], pos [M_s, 3], batch [M_s],
    idx [M_s, K]`` (the stage's neighbourhoods), ``sample`` (indices into the previous
    stage's nodes; ``None`` for the first), ``index`` (indices of the stage's nodes into the
    input points) and, with ``return_attention=True``, ``attention`` (one ``local``
    :class:`~pcattn.nn.AttentionMap` per block, on ``idx``). ``equal_clouds=B``: the batch
    is ``B`` clouds of equal size (see :func:`pcattn.models.inputs.equal_clouds`).

    Shape:
        feats: [M, in_channels], pos: [M, 3], batch: [M] -> stages
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], blocks: tuple[int, ...], *,
                 k: int = 16, ratio: float = 0.25) -> None:
        super().__init__()
        self.k = k
        self.embed = PointEmbedding(in_channels, channels[0])
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (c, n) in enumerate(zip(channels, blocks)):
            self.downs.append(nn.Identity() if i == 0 else
                              TransitionDown(channels[i - 1], c, ratio=ratio, k=k))
            self.stages.append(nn.ModuleList(PointTransformerBlock(c) for _ in range(n)))

    def forward(self, feats: Tensor, pos: Tensor, batch: Tensor | None = None, *,
                return_attention: bool = False, equal_clouds: int | None = None) -> list[dict]:
        x = self.embed(feats)  # [M, C0]
        index = torch.arange(pos.shape[0], device=pos.device)  # [M] into the input points
        stages = []
        for i, (down, blocks) in enumerate(zip(self.downs, self.stages)):
            sample = None
            if i > 0:
                # the centres' neighbourhoods are rows of the stage before's
                x, pos, batch, sample = down(x, pos, batch, neighbors=idx,
                                             equal_clouds=equal_clouds)  # [S, C_i]
                index = index[sample]  # [S]
            idx = knn(pos, self.k, batch, equal_clouds=equal_clouds)  # [M_i, K]
            attn = []
            for block in blocks:
                if return_attention:
                    x, amap = block(x, pos, idx, return_attention=True)  # [M_i, C_i]
                    attn.append(amap)
                else:
                    x = block(x, pos, idx)  # [M_i, C_i]
            stage = {"x": x, "pos": pos, "batch": batch, "idx": idx, "sample": sample,
                     "index": index}
            if return_attention:
                stage["attention"] = attn
            stages.append(stage)
        return stages


def stage_attention(stages: list[dict], prefix: str = "encoder") -> list[LayerAttention]:
    """The blocks' maps of :meth:`PointTransformerEncoder.forward` as ``LayerAttention``
    (``"<prefix>.<stage>.<block>"``), tied to the input points by each stage's ``index``."""
    return [LayerAttention(f"{prefix}.{s}.{b}", amap, stage["index"], stage["index"])
            for s, stage in enumerate(stages) for b, amap in enumerate(stage["attention"])]


class PointTransformerCls(Classifier):
    """Point Transformer classifier: :class:`PointTransformerEncoder`, global pooling and
    an MLP head.

    ``forward_features`` returns per-stage outputs and the pooled feature;
    ``forward_head(feat, pre_logits=)`` maps it to logits; ``forward(data)`` does both.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    def __init__(self, config: PointTransformerConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = PointTransformerEncoder(3 + cfg.feature_channels, cfg.channels, cfg.blocks,
                                               k=cfg.k, ratio=cfg.ratio)
        self.head = ClassificationHead(cfg.channels[-1], cfg.num_classes,
                                       hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """Run the backbone.

        Returns a dict with ``"pooled" [B, C]`` and ``"stages"`` (see
        :class:`PointTransformerEncoder`); with ``return_attention=True`` also
        ``"attention"``: one :class:`~pcattn.nn.LayerAttention` per block
        (``"encoder.<stage>.<block>"``), its ``local`` map on the stage's ``idx`` and
        ``query_index = source_index`` the stage's nodes as indices into the input points.
        """
        feats = point_features(data, self.config.feature_channels)  # [M, 3 + F]
        stages = self.encoder(feats, data.pos, batch_of(data), return_attention=return_attention,
                              equal_clouds=equal_clouds(data))
        pool = global_max_pool if self.config.pool == "max" else global_mean_pool
        out = {"pooled": pool(stages[-1]["x"], stages[-1]["batch"], num_clouds=num_clouds(data)),
               "stages": stages}
        if return_attention:
            out["attention"] = stage_attention(stages)
        return out
