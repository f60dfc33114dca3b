"""Metrics: classification (accuracy, confusion) and part segmentation (mIoU)."""

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


# --- part segmentation (ShapeNetPart protocol, as PointNet++ / PointNeXt compute it) ---------

def mask_to_category(logits: Tensor, category: Tensor, batch: Tensor, part_mask: Tensor
                     ) -> Tensor:
    """Logits with the parts outside each cloud's category set to ``-inf``.

    Shape:
        logits: [M, P], category: [B], batch: [M], part_mask: [num_categories, P] (bool)
        -> [M, P]
    """
    allowed = part_mask.to(logits.device)[category.long()][batch]  # [M, P]
    return logits.masked_fill(~allowed, float("-inf"))


def shape_ious(pred: Tensor, target: Tensor, category: Tensor, batch: Tensor,
               part_mask: Tensor) -> Tensor:
    """Mean IoU of each shape over the parts of its category.

    For shape ``b`` of category ``c`` and each part ``p`` of ``c``:
    ``IoU = |pred = p and target = p| / |pred = p or target = p|``, and 1 when the part is
    absent from both prediction and label (PointNet++'s convention). The shape's IoU is the
    mean over the parts of ``c``.

    Shape:
        pred: [M], target: [M], category: [B], batch: [M], part_mask: [num_categories, P]
        -> [B] (float64)
    """
    num_clouds, num_parts = category.numel(), part_mask.shape[1]
    batch = batch.long()

    def counts(keep: Tensor, part: Tensor) -> Tensor:  # [B, P] points per (shape, part)
        flat = (batch * num_parts + part.long())[keep]
        return torch.bincount(flat, minlength=num_clouds * num_parts).view(
            num_clouds, num_parts).double()

    every = torch.ones_like(target, dtype=torch.bool)
    inter = counts(pred == target, target)  # [B, P]
    union = counts(every, pred) + counts(every, target) - inter  # [B, P]
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    own = part_mask.to(iou.device)[category.long()].double()  # [B, P]: parts of each category
    return (iou * own).sum(1) / own.sum(1).clamp_min(1)  # [B]


def part_segmentation_sums(logits: Tensor, target: Tensor, category: Tensor, batch: Tensor,
                           part_mask: Tensor) -> dict[str, Tensor]:
    """Sum-reducible counts of one batch: per category the sum of shape IoUs
    (``iou_sum``, float64) and the number of shapes (``shapes``), and the correctly labelled
    and total points. Logits are masked to each cloud's category before the arg-max.

    Shape:
        logits: [M, P], target: [M], category: [B], batch: [M], part_mask: [num_categories, P]
        -> iou_sum: [num_categories], shapes: [num_categories], correct: [], points: []
    """
    num_categories = part_mask.shape[0]
    category = category.long().view(-1)
    pred = mask_to_category(logits, category, batch, part_mask).argmax(-1)  # [M]
    ious = shape_ious(pred, target, category, batch, part_mask)  # [B]
    return {
        "iou_sum": torch.zeros(num_categories, dtype=torch.float64, device=ious.device
                               ).index_add_(0, category, ious),
        "shapes": torch.bincount(category, minlength=num_categories),
        "correct": (pred == target).sum(),
        "points": torch.tensor(target.numel(), device=target.device),
    }


def part_segmentation_metrics_from_sums(sums: dict[str, Tensor],
                                        categories: tuple[str, ...] | None = None) -> dict:
    """Instance mIoU (mean over shapes), class mIoU (mean over the categories present of the
    per-category mean), the per-category table and point accuracy, from summed counts."""
    iou_sum, shapes = sums["iou_sum"].double().cpu(), sums["shapes"].cpu()
    present = shapes > 0
    per_category = iou_sum / shapes.clamp_min(1)
    names = categories or tuple(str(i) for i in range(len(shapes)))
    return {
        "instance_miou": float(iou_sum.sum() / shapes.sum().clamp_min(1)),
        "class_miou": float(per_category[present].mean()) if present.any() else 0.0,
        "per_category_miou": {n: float(v) if p else None
                              for n, v, p in zip(names, per_category, present)},
        "point_accuracy": float(sums["correct"]) / max(int(sums["points"]), 1),
        "num_shapes": int(shapes.sum()),
    }


def part_segmentation_metrics(logits: Tensor, target: Tensor, category: Tensor, batch: Tensor,
                              part_mask: Tensor, categories: tuple[str, ...] | None = None
                              ) -> dict:
    """The metrics of :func:`part_segmentation_metrics_from_sums` for one set of predictions.

    Shape:
        logits: [M, P], target: [M], category: [B], batch: [M], part_mask: [num_categories, P]
    """
    return part_segmentation_metrics_from_sums(
        part_segmentation_sums(logits, target, category, batch, part_mask), categories)


def semantic_segmentation_metrics_from_confusion(confusion: Tensor,
                                                 names: tuple[str, ...] | None = None) -> dict:
    """mIoU (the mean over classes of ``TP / (TP + FP + FN)``, classes absent from both the
    targets and the predictions left out, as ScanNet and S3DIS count it), per-class IoU and
    point accuracy from a ``[target, prediction]`` confusion matrix of points.

    Shape:
        confusion: [num_classes, num_classes]
    """
    c = confusion.double()
    tp = c.diagonal()
    union = c.sum(0) + c.sum(1) - tp  # [num_classes]
    present = union > 0
    iou = tp / union.clamp_min(1)
    names = names or tuple(str(i) for i in range(c.shape[0]))
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "point_accuracy": float(tp.sum() / c.sum().clamp_min(1)),
            "per_class_iou": {n: float(v) if p else None
                              for n, v, p in zip(names, iou, present)}}
