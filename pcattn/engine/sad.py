"""``train.sad_weight``: self-attention distillation as an extra loss of a training."""

from __future__ import annotations

from torch import Tensor, nn

from pcattn.nn.distillation import attention_distillation_loss


class WithDistillation(nn.Module):
    """A classifier whose forward returns ``(logits, SAD loss x weight)`` for the training
    step; the weight is 0 (and the loss not computed) until the loop sets it.

    It wraps models whose ``forward_features(data)`` returns ``"pooled"`` and at least two
    ``"stages"`` (``forward_head(pooled)`` then gives the logits, as their ``forward``
    does); DDP wraps this module, so the gradients of both terms are synchronised.
    """

    def __init__(self, model: nn.Module, model_name: str) -> None:
        super().__init__()
        if not hasattr(model, "forward_features") or not hasattr(model, "forward_head"):
            raise ValueError(f"train.sad_weight > 0 needs a model with forward_features and "
                             f"forward_head; {model_name} has none; set train.sad_weight: 0")
        self.model, self.model_name, self.weight = model, model_name, 0.0

    def forward(self, data) -> tuple[Tensor, Tensor | None]:
        feats = self.model.forward_features(data)
        stages = feats.get("stages")
        if "pooled" not in feats or stages is None or len(stages) < 2:
            raise ValueError(f"train.sad_weight > 0 needs a classifier whose stages it can "
                             f"read (forward_features with 'pooled' and two or more "
                             f"'stages', e.g. point_transformer_cls, nw_cls); "
                             f"{self.model_name} has none; set train.sad_weight: 0")
        logits = self.model.forward_head(feats["pooled"])
        if self.weight <= 0:
            return logits, None
        return logits, self.weight * attention_distillation_loss(stages)


def sad_weight_at(epoch: int, weight: float, start: float) -> float:
    """``weight`` from epoch ``start`` on (0-based epochs), 0 before: SAD's warm-up."""
    return weight if epoch >= start else 0.0
