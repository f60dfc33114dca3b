"""Point Transformer V3-style networks (Wu et al., CVPR 2024): serialized patch attention
stages with grid pooling; a classifier and a U-Net segmenter, in pure torch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.ptv3 import PTv3Config
from pcattn.models.inputs import batch_of, point_features
from pcattn.models.ptv2 import PTv2Cls, PTv2Seg
from pcattn.nn import PointEmbedding, PTv3Block
from pcattn.nn.attention_map import LayerAttention
from pcattn.nn.serialized_pool import SerializedPooling, SerializedUnpooling
from pcattn.ops.serialize import Serialization, point_spacing, serialize


class _Stage(nn.Module):
    """Blocks at one resolution, block ``j`` in the ``j``-th of the forward's orders."""

    def __init__(self, cfg: PTv3Config, channels: int, heads: int, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            PTv3Block(channels, heads=heads, mlp_ratio=cfg.mlp_ratio, patch_size=cfg.patch_size,
                      pos_encoding=None if cfg.pos_encoding == "none" else cfg.pos_encoding)
            for _ in range(depth))

    def forward(self, x: Tensor, pos: Tensor, s: Serialization, orders: tuple[str, ...],
                where: Tensor, name: str, maps: list | None) -> Tensor:
        for j, block in enumerate(self.blocks):
            order = orders[j % len(orders)]
            if maps is None:
                x = block(x, pos, s.batch, serialization=s, order=order)  # [M_s, C]
            else:
                x, amap = block(x, pos, s.batch, serialization=s, order=order,
                                return_attention=True)
                maps.append(LayerAttention(f"{name}.{j}", amap, where, where))
        return x


class PTv3Encoder(nn.Module):
    """Point embedding, then per stage: grid pooling (after the first) and blocks.

    Returns every level's ``x, pos, batch, serialization, where`` (indices of the level's
    points in the input: the first point of each cell) and ``cluster`` (the cell of each
    point of the level before), coarsest last.
    """

    def __init__(self, cfg: PTv3Config) -> None:
        super().__init__()
        self.config = cfg
        self.embed = PointEmbedding(3 + cfg.feature_channels, cfg.channels[0])
        self.pools = nn.ModuleList(SerializedPooling(c_in, c) for c_in, c in
                                   zip(cfg.channels[:-1], cfg.channels[1:]))
        self.stages = nn.ModuleList(_Stage(cfg, c, h, d) for c, h, d in
                                    zip(cfg.channels, cfg.heads, cfg.depths))

    def orders(self) -> tuple[str, ...]:
        """The block orders of this forward: shuffled in training when asked (PTv3)."""
        orders = self.config.orders
        if self.training and self.config.shuffle_orders:
            orders = tuple(orders[i] for i in torch.randperm(len(orders)).tolist())
        return orders

    def forward(self, data, maps: list | None) -> list[dict]:
        cfg = self.config
        pos, batch = data.pos, batch_of(data)
        grid = cfg.grid_size if cfg.grid_size is not None else point_spacing(pos, batch)
        cells = cfg.pos_encoding == "grid"
        s = serialize(pos, batch, orders=cfg.orders, grid_size=grid, neighbors=cells)
        x = self.embed(point_features(data, cfg.feature_channels))  # [M, C0]
        where = torch.arange(pos.shape[0], device=pos.device)  # [M]
        orders, cluster, levels = self.orders(), None, []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x, pos, s, cluster, first = self.pools[i - 1](x, pos, s, neighbors=cells)
                where = where[first]  # [V]
            x = stage(x, pos, s, orders, where, f"encoder.{i}", maps)  # [M_i, C_i]
            levels.append({"x": x, "pos": pos, "batch": s.batch, "serialization": s,
                           "where": where, "cluster": cluster})
        return levels


class PTv3Cls(PTv2Cls):
    """PTv3-style classifier: :class:`PTv3Encoder`, a LayerNorm, mean pooling and an MLP head
    (PTv2's classifier on serialized stages; ``levels`` hold per stage ``x, pos, batch,
    serialization, where, cluster``).

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    encoder_class = PTv3Encoder


class PTv3Seg(PTv2Seg):
    """PTv3-style segmenter: :class:`PTv3Encoder` and a U-Net decoder (PTv2's segmenter on
    serialized stages).

    Each decoder stage gives every point of the finer level its cell's feature and adds
    its own encoder feature (:class:`~pcattn.nn.serialized_pool.SerializedUnpooling`), then
    runs ``decoder_depth`` blocks on the finer level; the head sees each point's feature
    and the one-hot object category (none when ``num_categories=0``: scenes).

    Shape:
        data.pos: [M, 3], data.x: [M, F], data.batch: [M], data.category: [B] (unless
        ``num_categories=0``) -> logits [M, num_classes]
    """

    encoder_class = PTv3Encoder

    def _up(self, i: int) -> nn.Module:
        ch = self.config.channels
        return SerializedUnpooling(ch[i + 1], ch[i])

    def _decoder_stage(self, i: int) -> nn.Module:
        cfg = self.config
        return _Stage(cfg, cfg.channels[i], cfg.heads[i], cfg.decoder_depth)

    def _decode(self, data, levels: list[dict], maps: list | None) -> Tensor:
        orders = self.encoder.orders()
        x = levels[-1]["x"]
        for i in reversed(range(len(self.ups))):
            fine = levels[i]
            x = self.ups[i](x, fine["x"], levels[i + 1]["cluster"])  # [M_i, C_i]
            x = self.decoder[i](x, fine["pos"], fine["serialization"], orders, fine["where"],
                                f"decoder.{i}", maps)  # [M_i, C_i]
        return x
