"""Classification metrics from predictions and targets."""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Counts ``[num_classes, num_classes]``: row = true class, column = predicted."""
    flat = target.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def classification_metrics(pred: Tensor, target: Tensor, num_classes: int) -> dict:
    """Overall accuracy, mean per-class accuracy (over classes present) and per-class."""
    return classification_metrics_from_confusion(confusion_matrix(pred, target, num_classes))


def classification_metrics_from_confusion(confusion: Tensor) -> dict:
    """The metrics of :func:`classification_metrics` from summed confusion counts."""
    cm = confusion.double()
    support = cm.sum(1)
    per_class = cm.diag() / support.clamp_min(1)
    present = support > 0
    return {
        "overall_accuracy": float(cm.diag().sum() / cm.sum().clamp_min(1)),
        "mean_class_accuracy": float(per_class[present].mean()) if present.any() else 0.0,
        "per_class_accuracy": [float(a) if p else None for a, p in zip(per_class, present)],
        "num_samples": int(cm.sum()),
    }
