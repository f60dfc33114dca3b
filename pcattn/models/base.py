"""What every classifier and part segmenter does after its features: the head and
``forward``. A model defines ``forward_features(data)`` (``"pooled" [B, C]`` for a
classifier, ``"point" [M, C]`` for a segmenter) and ``self.head``."""

from __future__ import annotations

from torch import Tensor, nn

from pcattn.models.inputs import batch_of, category_of


class Classifier(nn.Module):
    """``forward_head(pooled)`` -> logits ``[B, num_classes]``; ``forward(data)`` does both."""

    def forward_head(self, pooled: Tensor, *, pre_logits: bool = False) -> Tensor:
        return self.head(pooled, pre_logits=pre_logits)

    def forward(self, data) -> Tensor:
        return self.forward_head(self.forward_features(data)["pooled"])


class Segmenter(nn.Module):
    """``forward_head(point, category, batch)`` -> logits ``[M, num_classes]`` (the head
    reads each cloud's object category one-hot when ``config.num_categories > 0``);
    ``forward(data)`` does both."""

    def forward_head(self, point: Tensor, category: Tensor | None, batch: Tensor, *,
                     pre_logits: bool = False) -> Tensor:
        return self.head(point, batch, category=category, pre_logits=pre_logits)

    def forward(self, data) -> Tensor:
        n = self.config.num_categories
        return self.forward_head(self.forward_features(data)["point"],
                                 category_of(data, n) if n else None, batch_of(data))
