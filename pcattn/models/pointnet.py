"""PointNet (Qi et al. 2017): the no-attention reference, classifier and part segmenter.

Every point goes through the same MLP on its own; a max over the points of each cloud is
the only place where points meet. Whatever an attention model gains over it on the same data
and recipe is what its neighbourhoods and attention bring.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.model_configs.pointnet import PointNetConfig, PointNetSegConfig
from pcattn.models.base import Classifier, Segmenter
from pcattn.models.inputs import batch_of, num_clouds, point_features
from pcattn.nn import (
    ClassificationHead,
    SegmentationHead,
    TNet,
    apply_transform,
    global_max_pool,
)


class PointNetEncoder(nn.Module):
    r"""PointNet's shared per-point MLP and max pool (Qi et al., CVPR 2017, Fig. 2):

    .. math::
        h^{(l)}_i = \operatorname{ReLU}\big(\operatorname{Norm}(W_l h^{(l-1)}_i + b_l)\big),
        \qquad g_b = \max_{i \in b} h^{(L)}_i

    with ``h^{(0)}_i = [p_i | x_i]``. The 1x1 convolutions of the paper are ``Linear`` layers
    on the packed points ``[M, C]``.

    ``Norm`` is ``BatchNorm1d`` over every point of the batch (``norm="batch"``, as the
    paper) or a per-point ``LayerNorm`` (``norm="layer"``). BatchNorm is the default, with
    ``bn_momentum=0.5`` (PointNet's own starting BN decay) in place of PyTorch's 0.1. Its
    statistics are over the thousands of points of a batch, not over ``B`` pooled vectors
    or a few sampled centres, so they vary little from batch to batch and a short running
    average costs little; at 0.1 the running variance keeps a trace of its initial 1 for
    dozens of steps, far above the small variances of the first layers, and eval mode
    lags: on a fixed batch of four clouds the eval-mode loss was still 1.34 after 20 steps
    when the train-mode one was 0.02; at 0.5 it follows within five steps (0.07 against
    0.08 at step 10, where LayerNorm stood at 0.44). In train mode a cloud's output
    depends on the other clouds of its batch (batch statistics); in eval mode it does not.

    With ``tnet=True`` a :class:`~pcattn.nn.TNet` (its own per-point MLP and
    LayerNorm) reads ``[p | x]`` and predicts a ``3 x 3`` matrix per cloud applied to the
    xyz (``p_i A_b``); extra channels are passed on unchanged. It starts at the identity.
    PointNet's 64 x 64 feature transform is left out: it needs an orthogonality loss term
    that the training loop does not add.

    Args:
        in_channels: input channels per point (``3 + F``: xyz and ``data.x``).
        channels: width of each shared per-point layer; the last is pooled.
        norm: ``"batch"`` or ``"layer"``.
        bn_momentum: momentum of the BatchNorm running statistics (``norm="batch"``).
        tnet: learn an input transform of the xyz.

    ``forward`` returns ``{"layers": [[M, C_l], ...], "pooled": [B, C_L], "transform":
    [B, 3, 3] or None}``.

    Shape:
        feats: [M, in_channels], batch: [M] -> pooled [B, channels[-1]]
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], *, norm: str = "batch",
                 bn_momentum: float = 0.5, tnet: bool = False) -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")

        def norm_layer(c: int) -> nn.Module:
            return nn.BatchNorm1d(c, momentum=bn_momentum) if norm == "batch" else nn.LayerNorm(c)

        widths = (in_channels, *channels)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(c_in, c_out), norm_layer(c_out), nn.ReLU(inplace=True))
            for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.tnet = TNet(in_channels, dim=3) if tnet else None

    def forward(self, feats: Tensor, batch: Tensor, *, num_clouds: int) -> dict:
        transform = None
        if self.tnet is not None:
            transform = self.tnet(feats, batch, num_clouds=num_clouds)  # [B, 3, 3]
            xyz = apply_transform(feats[:, :3], transform, batch)  # [M, 3]
            feats = torch.cat([xyz, feats[:, 3:]], dim=-1)  # [M, 3 + F]
        h, layers = feats, []
        for layer in self.layers:
            h = layer(h)  # [M, C_l]
            layers.append(h)
        pooled = global_max_pool(h, batch, num_clouds=num_clouds)  # [B, C_L]
        return {"layers": layers, "pooled": pooled, "transform": transform}


class PointNetCls(Classifier):
    """PointNet classifier: :class:`PointNetEncoder` and an MLP head (512-256, dropout 0.4).

    The head is the library's :class:`~pcattn.nn.ClassificationHead` (LayerNorm): a
    BatchNorm over the ``B`` pooled vectors of a batch is where running statistics do go
    wrong in eval mode, so ``norm`` applies to the per-point layers only.

    ``forward_features(data, return_attention=False)`` returns the encoder's dict
    (``"pooled" [B, C]``, ``"layers"``, ``"transform"``); with ``return_attention=True``
    also ``"attention": []``: PointNet has no attention. ``forward_head(pooled,
    pre_logits=)`` maps the pooled feature to logits; ``forward(data)`` does both.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M] -> logits [B, num_classes]
    """

    def __init__(self, config: PointNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = PointNetEncoder(3 + cfg.feature_channels, cfg.channels, norm=cfg.norm,
                                       bn_momentum=cfg.bn_momentum, tnet=cfg.tnet)
        self.head = ClassificationHead(cfg.channels[-1], cfg.num_classes,
                                       hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        feats = point_features(data, self.config.feature_channels)  # [M, 3 + F]
        out = self.encoder(feats, batch_of(data), num_clouds=num_clouds(data))
        if return_attention:
            out["attention"] = []  # nothing weighs points: PointNet only pools
        return out


class PointNetSeg(Segmenter):
    """PointNet part segmenter: each point's features from every shared layer but the last
    (64, 64, 64, 128 by default), its cloud's global max-pooled feature (1024) and the
    one-hot object category, concatenated and mapped to part logits by a per-point MLP
    (512-256-128, :class:`~pcattn.nn.SegmentationHead`), as the paper's part-segmentation
    network links local and global features.

    ``forward_features(data, return_attention=False)`` returns the encoder's dict plus
    ``"point" [M, C_point]`` (and ``"attention": []`` when asked); ``forward_head(point,
    category, batch, pre_logits=)`` appends the category one-hot and maps to part logits;
    ``forward(data)`` does both.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M], data.category: [B]
        (unless ``num_categories=0``) -> logits [M, num_classes]
    """

    def __init__(self, config: PointNetSegConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = PointNetEncoder(3 + cfg.feature_channels, cfg.channels, norm=cfg.norm,
                                       bn_momentum=cfg.bn_momentum, tnet=cfg.tnet)
        self.head = SegmentationHead(sum(cfg.channels), cfg.num_classes,
                                     num_categories=cfg.num_categories or None,
                                     hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        batch = batch_of(data)
        feats = point_features(data, self.config.feature_channels)  # [M, 3 + F]
        out = self.encoder(feats, batch, num_clouds=num_clouds(data))
        local = out["layers"][:-1]  # [M, C_l] each
        out["point"] = torch.cat(local + [out["pooled"][batch]], dim=-1)  # [M, sum C_l]
        if return_attention:
            out["attention"] = []  # nothing weighs points: PointNet only pools
        return out

