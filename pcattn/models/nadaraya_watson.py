r"""The Nadaraya-Watson baseline: Point Transformer with every attention replaced by a kernel.

This is the floor every attention model in pcattn is reported against. It keeps everything
of Point Transformer (Zhao et al., ICCV 2021) that is not attention, namely the point
embedding, the stages of transition down (FPS + kNN + max pool), the residual blocks with
their linear layers and LayerNorms, the decoder's transition-up MLPs and the heads, and
replaces each learned attention with Nadaraya-Watson kernel regression (Nadaraya 1964;
Watson 1964) over the same neighbourhood:

.. math::
    y_i = \sum_{j \in N(i)} \operatorname{softmax}_j\Big(
          -\frac{\lVert p_i - p_j \rVert^2}{2 \sigma_s^2}\Big)\, x_j

* inside the blocks, over the ``k`` nearest nodes of each node
  (:class:`~pcattn.nn.NadarayaWatsonLayer` where Point Transformer has its vector attention);
* for global pooling, from each cloud's centroid to all its nodes
  (:class:`~pcattn.nn.NadarayaWatsonPool`; classification);
* in the decoder, from each fine point to its ``interp_k`` nearest coarse points
  (``NadarayaWatsonPool(k=interp_k)``, i.e. ``pcattn.ops.interpolate(mode="nadaraya_watson")``;
  segmentation).

Why it is the floor: the weights are attention weights that no data taught, a softmax over
the same keys a learned layer sees, with scores fixed by distance. A learned attention model
has the same budget of everything else, so whatever it gains over this baseline is what
its learned (content-dependent) weights contribute; where it gains nothing, the attention
has learned no more than "nearby points matter more".

Bandwidths. ``sigma`` is in units of each stage's neighbourhood scale, measured per cloud:
``h_s`` = the mean distance from a node to its other ``k`` nearest nodes at stage ``s``
(blocks, and the coarse stage of a decoder step), and the RMS distance to the centroid for
the global pool. So ``sigma_s = sigma * h_s``: fixed by the geometry (and unchanged by
rescaling a cloud) with ``learn_sigma=False``, no parameter in any attention or pooling; with
``learn_sigma=True`` every kernel has its own learned ``log sigma`` (initialised to
``sigma``, so the two modes agree before training).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.nadaraya_watson import NadarayaWatsonConfig
from pcattn.models.base import Classifier, Segmenter
from pcattn.models.inputs import batch_of, equal_clouds, num_clouds, point_features
from pcattn.nn import (
    ClassificationHead,
    NadarayaWatsonBlock,
    NadarayaWatsonPool,
    PointEmbedding,
    SegmentationHead,
    TransitionDown,
    TransitionUp,
)
from pcattn.nn.attention_map import LayerAttention
from pcattn.ops.gather import gather
from pcattn.ops.knn import knn


def neighbourhood_scale(pos: Tensor, idx: Tensor, batch: Tensor, num_clouds: int) -> Tensor:
    """Per cloud, the mean distance from a node to its neighbours in ``idx`` (itself and
    ``-1`` padding left out); a tiny positive number for a cloud with no such pair.

    Shape:
        pos: [M, 3], idx: [M, K], batch: [M] -> [B]
    """
    self_loop = idx == torch.arange(idx.shape[0], device=idx.device)[:, None]
    pair = (idx >= 0) & ~self_loop  # [M, K]
    dist = (gather(pos, idx) - pos[:, None, :]).norm(dim=-1) * pair  # [M, K]
    total = pos.new_zeros(num_clouds).index_add_(0, batch, dist.sum(1))  # [B]
    count = pos.new_zeros(num_clouds).index_add_(0, batch, pair.sum(1).to(pos.dtype))  # [B]
    return (total / count.clamp(min=1)).clamp(min=1e-12)


def cloud_radius(pos: Tensor, batch: Tensor, num_clouds: int) -> Tensor:
    """Per cloud, the RMS distance of its nodes to their centroid (tiny when it is one point).

    Shape:
        pos: [M, 3], batch: [M] -> [B]
    """
    counts = pos.new_zeros(num_clouds).index_add_(0, batch, pos.new_ones(batch.shape[0]))
    n = counts.clamp(min=1)[:, None]  # [B, 1]
    centroid = pos.new_zeros(num_clouds, 3).index_add_(0, batch, pos) / n  # [B, 3]
    d2 = ((pos - centroid[batch]) ** 2).sum(-1)  # [M]
    ms = pos.new_zeros(num_clouds).index_add_(0, batch, d2) / n[:, 0]  # [B]
    return ms.sqrt().clamp(min=1e-12)


class NadarayaWatsonEncoder(nn.Module):
    """Embedding and stages of (transition down + kernel blocks), as Point Transformer's.

    ``forward`` returns one dict per stage: ``x [M_s, C_s]``, ``pos``, ``batch``, ``idx [M_s,
    K]``, ``scale [B]`` (the neighbourhood scale ``h_s``) and ``index [M_s]`` (the stage's
    nodes as packed indices into the input points), and the list of ``LayerAttention``.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> per stage x: [M_s, C_s]
    """

    def __init__(self, cfg: NadarayaWatsonConfig) -> None:
        super().__init__()
        self.k, self.feature_channels = cfg.k, cfg.feature_channels
        self.embed = PointEmbedding(3 + cfg.feature_channels, cfg.channels[0])
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (c, n) in enumerate(zip(cfg.channels, cfg.blocks)):
            self.downs.append(nn.Identity() if i == 0 else
                              TransitionDown(cfg.channels[i - 1], c, ratio=cfg.ratio, k=cfg.k))
            self.stages.append(nn.ModuleList(
                NadarayaWatsonBlock(c, sigma=cfg.sigma, learn_sigma=cfg.learn_sigma)
                for _ in range(n)))

    def forward(self, data, num_clouds: int, return_attention: bool = False
                ) -> tuple[list[dict], list[LayerAttention]]:
        pos, batch, equal = data.pos, batch_of(data), equal_clouds(data)
        feats = point_features(data, self.feature_channels)  # [M, 3 + F]
        x = self.embed(feats)  # [M, C0]
        index = torch.arange(pos.shape[0], device=pos.device)  # [M]
        stages, maps = [], []
        for i, (down, blocks) in enumerate(zip(self.downs, self.stages)):
            if i > 0:
                # the centres' neighbourhoods are rows of the stage before's
                x, pos, batch, sample = down(x, pos, batch, neighbors=idx,
                                             equal_clouds=equal)  # [M_i, C_i]
                index = index[sample]  # [M_i]
            idx = knn(pos, self.k, batch, equal_clouds=equal)  # [M_i, K]
            scale = neighbourhood_scale(pos, idx, batch, num_clouds)  # [B]
            unit = pos / scale[batch][:, None]  # [M_i, 3], in units of h_i
            for j, block in enumerate(blocks):
                if return_attention:
                    x, amap = block(x, unit, idx, return_attention=True)
                    maps.append(LayerAttention(f"stages.{i}.{j}", amap, index, index))
                else:
                    x = block(x, unit, idx)  # [M_i, C_i]
            stages.append({"x": x, "pos": pos, "batch": batch, "idx": idx, "scale": scale,
                           "index": index})
        return stages, maps


class NadarayaWatsonCls(Classifier):
    """The Nadaraya-Watson classifier: the encoder, a kernel pool from each cloud's centroid
    and Point Transformer's MLP head (see the module docstring).

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    def __init__(self, config: NadarayaWatsonConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = NadarayaWatsonEncoder(cfg)
        self.pool = NadarayaWatsonPool(sigma=cfg.sigma, learn_sigma=cfg.learn_sigma)
        self.head = ClassificationHead(cfg.channels[-1], cfg.num_classes,
                                       hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``{"pooled": [B, C], "stages": [...]}`` (stages as the encoder's), and with
        ``return_attention=True`` ``"attention"``: the blocks' maps in order, then the pool's
        (kind ``"pool"``, ``weight [M_s, 1]``; its query index is the cloud id)."""
        b = num_clouds(data)
        stages, maps = self.encoder(data, b, return_attention)
        last = stages[-1]
        unit = last["pos"] / cloud_radius(last["pos"], last["batch"], b)[last["batch"]][:, None]
        pooled = self.pool(last["x"], unit, last["batch"], return_attention=return_attention,
                           equal_clouds=equal_clouds(data))
        out = {"stages": stages}
        if return_attention:
            pooled, amap = pooled  # [B, C], local map: one row per cloud over its nodes
            maps.append(LayerAttention("pool", amap, torch.arange(b, device=pooled.device),
                                       last["index"], residual=False))
            out["attention"] = maps
        out["pooled"] = pooled
        return out


class NadarayaWatsonSeg(Segmenter):
    """The Nadaraya-Watson part segmenter: Point Transformer's U-Net (encoder; per level a
    transition up whose interpolation is a kernel over the ``interp_k`` nearest coarse
    points, then kernel blocks) and a per-point head with the category one-hot.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M], data.category: [B]
        -> logits [M, num_classes]
    """

    def __init__(self, config: NadarayaWatsonConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = NadarayaWatsonEncoder(cfg)
        ch = cfg.channels
        levels = range(len(ch) - 2, -1, -1)  # decoder levels, coarse to fine
        self.ups = nn.ModuleList(TransitionUp(ch[i + 1], ch[i], k=cfg.interp_k) for i in levels)
        self.interps = nn.ModuleList(
            NadarayaWatsonPool(sigma=cfg.sigma, learn_sigma=cfg.learn_sigma, k=cfg.interp_k)
            for _ in levels)
        self.decoder = nn.ModuleList(
            nn.ModuleList(NadarayaWatsonBlock(ch[i], sigma=cfg.sigma,
                                              learn_sigma=cfg.learn_sigma)
                          for _ in range(cfg.blocks[i]))
            for i in levels)
        self.head = SegmentationHead(ch[0], cfg.num_classes,
                                     num_categories=cfg.num_categories or None,
                                     hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``{"point": [M, C0], "stages": [...]}``, and with ``return_attention=True``
        ``"attention"``: the encoder's maps, then per decoder level its interpolation
        (kind ``"local"`` over the coarse nodes, ``weight [M_fine, interp_k, 1]``) and its
        blocks' maps."""
        b = num_clouds(data)
        stages, maps = self.encoder(data, b, return_attention)
        x = stages[-1]["x"]
        for level, (up, interp, blocks) in enumerate(zip(self.ups, self.interps,
                                                         self.decoder)):
            coarse, fine = stages[-1 - level], stages[-2 - level]
            h = coarse["scale"]  # [B]: the kernel works in units of the coarse scale
            src = coarse["pos"] / h[coarse["batch"]][:, None]  # [S, 3]
            dst = fine["pos"] / h[fine["batch"]][:, None]  # [M_f, 3]
            # Point Transformer's transition up, its interpolation done by the kernel
            x = interp(up.mlp(x), src, coarse["batch"], query=dst, query_batch=fine["batch"],
                       return_attention=return_attention, equal_clouds=equal_clouds(data))
            if return_attention:
                x, amap = x  # [M_f, C], local map [M_f, interp_k] over the coarse nodes
                maps.append(LayerAttention(f"decoder.{level}.interpolate", amap,
                                           fine["index"], coarse["index"], residual=False))
            x = x + up.mlp_skip(fine["x"])  # [M_f, C_f]
            unit = fine["pos"] / fine["scale"][fine["batch"]][:, None]
            for j, block in enumerate(blocks):
                if return_attention:
                    x, amap = block(x, unit, fine["idx"], return_attention=True)
                    maps.append(LayerAttention(f"decoder.{level}.{j}", amap, fine["index"],
                                               fine["index"]))
                else:
                    x = block(x, unit, fine["idx"])  # [M_f, C_f]
        out = {"point": x, "stages": stages}
        if return_attention:
            out["attention"] = maps
        return out
