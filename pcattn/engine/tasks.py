"""What a run optimises and reports, chosen from the dataset: the loss, the metrics and which
metric decides the best checkpoint.

The training loop only talks to a :class:`Task`. Metric state is a dict of tensors whose
entries are *sums* over samples, so that under DDP an ``all_reduce(SUM)`` of every entry gives
the exact metrics of the whole split (as long as no sample is counted twice).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.engine.metrics import (classification_metrics_from_confusion,
                                   part_segmentation_metrics_from_sums, part_segmentation_sums,
                                   semantic_segmentation_metrics_from_confusion)


class Task:
    """Interface of a task; see :class:`ClassificationTask` for an implementation.

    Attributes:
        name: ``"classification"``, ``"part_segmentation"`` or ``"semantic_segmentation"``.
        best_metric: key of :meth:`compute` whose larger value means a better model.
    """

    name: str
    best_metric: str

    def loss(self, logits: Tensor, batch) -> Tensor:
        raise NotImplementedError

    def new_state(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Zeroed, sum-reducible metric state."""
        raise NotImplementedError

    def update(self, state: dict[str, Tensor], logits: Tensor, batch) -> None:
        """Add one batch's predictions to ``state`` (in place)."""
        raise NotImplementedError

    def compute(self, state: dict[str, Tensor]) -> dict:
        """Plain-Python metrics (JSON-serialisable) from a (reduced) state."""
        raise NotImplementedError


class ClassificationTask(Task):
    """One label per cloud: cross-entropy (optionally label-smoothed); overall, mean-class and
    per-class accuracy from a confusion matrix.

    Shape:
        logits: [B, num_classes], batch.y: [B]
    """

    name = "classification"
    best_metric = "overall_accuracy"

    def __init__(self, num_classes: int, *, label_smoothing: float = 0.0) -> None:
        self.num_classes = num_classes
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss(self, logits: Tensor, batch) -> Tensor:
        return self.criterion(logits, batch.y)

    def new_state(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        return {"confusion": torch.zeros(self.num_classes, self.num_classes, dtype=torch.long,
                                         device=device)}

    def update(self, state: dict[str, Tensor], logits: Tensor, batch) -> None:
        flat = batch.y.long() * self.num_classes + logits.argmax(-1)
        state["confusion"] += torch.bincount(
            flat, minlength=self.num_classes ** 2).view(self.num_classes, self.num_classes)

    def compute(self, state: dict[str, Tensor]) -> dict:
        return classification_metrics_from_confusion(state["confusion"].cpu())


class SegmentationTask(Task):
    """A part label per point (ShapeNetPart protocol): cross-entropy over the points
    (optionally label-smoothed); instance / class mIoU, per-category mIoU and point accuracy
    with the logits of parts outside each cloud's category masked before the arg-max.

    The state holds, per category, the sum of shape IoUs and the shape count, and the correct
    and total points: sums, so an ``all_reduce(SUM)`` across ranks gives the exact metrics.

    Args:
        part_mask: ``[num_categories, num_classes]`` bool, True where a part belongs to a
            category (the dataset's ``part_mask``).
        categories: category names for the per-category table.
        label_smoothing: of the cross-entropy.

    Shape:
        logits: [M, num_classes], batch.y: [M], batch.category: [B], batch.batch: [M]
    """

    name = "part_segmentation"
    best_metric = "instance_miou"

    def __init__(self, part_mask: Tensor, categories: tuple[str, ...] | None = None, *,
                 label_smoothing: float = 0.0) -> None:
        self.part_mask = part_mask.bool()
        self.categories = tuple(categories) if categories is not None else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss(self, logits: Tensor, batch) -> Tensor:
        return self.criterion(logits, batch.y)

    def new_state(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        num_categories = self.part_mask.shape[0]
        return {"iou_sum": torch.zeros(num_categories, dtype=torch.float64, device=device),
                "shapes": torch.zeros(num_categories, dtype=torch.long, device=device),
                "correct": torch.zeros((), dtype=torch.long, device=device),
                "points": torch.zeros((), dtype=torch.long, device=device)}

    def update(self, state: dict[str, Tensor], logits: Tensor, batch) -> None:
        sums = part_segmentation_sums(logits.detach(), batch.y, batch.category,
                                      _batch_vector(batch), self.part_mask)
        for key, value in sums.items():
            state[key] += value.to(state[key].device)

    def compute(self, state: dict[str, Tensor]) -> dict:
        return part_segmentation_metrics_from_sums(state, self.categories)


class SemanticSegmentationTask(ClassificationTask):
    """A class per point, no object category (scenes): cross-entropy over the points
    (optionally label-smoothed); mIoU over classes, per-class IoU and point accuracy from a
    confusion matrix of all the points of the split.

    Shape:
        logits: [M, num_classes], batch.y: [M]
    """

    name = "semantic_segmentation"
    best_metric = "miou"

    def __init__(self, num_classes: int, classes: tuple[str, ...] | None = None, *,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(num_classes, label_smoothing=label_smoothing)
        self.classes = tuple(classes) if classes is not None else None

    def compute(self, state: dict[str, Tensor]) -> dict:
        return semantic_segmentation_metrics_from_confusion(state["confusion"].cpu(),
                                                            self.classes)


def _batch_vector(batch) -> Tensor:
    b = getattr(batch, "batch", None)
    return b if b is not None else torch.zeros(batch.y.shape[0], dtype=torch.long,
                                               device=batch.y.device)


def task_for(dataset, *, label_smoothing: float = 0.0) -> Task:
    """The task a dataset asks for: one label per cloud -> classification; a label per point
    with a ``category`` per cloud -> part segmentation (the dataset gives ``part_mask``); a
    label per point in a dataset of ``num_categories = 0`` (scenes) -> semantic
    segmentation."""
    sample = dataset[0]
    if sample.y.numel() == 1:
        return ClassificationTask(dataset.num_classes, label_smoothing=label_smoothing)
    if getattr(sample, "category", None) is None and getattr(
            dataset, "num_categories", None) == 0:
        return SemanticSegmentationTask(dataset.num_classes, getattr(dataset, "classes", None),
                                        label_smoothing=label_smoothing)
    if getattr(sample, "category", None) is None or not hasattr(dataset, "part_mask"):
        raise ValueError(f"{type(dataset).__name__} has a label per point but no object "
                         "category per cloud and part table (category, part_mask): only part "
                         "segmentation (ShapeNetPart-like data) is supported for per-point "
                         "labels")
    return SegmentationTask(dataset.part_mask, getattr(dataset, "categories", None),
                            label_smoothing=label_smoothing)
