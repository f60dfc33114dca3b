"""What a run optimises and reports, chosen from the dataset: the loss, the metrics and which
metric decides the best checkpoint.

The training loop only talks to a :class:`Task`. Metric state is a dict of tensors whose
entries are *sums* over samples, so that under DDP an ``all_reduce(SUM)`` of every entry gives
the exact metrics of the whole split (as long as no sample is counted twice).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.engine.metrics import classification_metrics_from_confusion


class Task:
    """Interface of a task; see :class:`ClassificationTask` for an implementation.

    Attributes:
        name: ``"classification"`` or ``"part_segmentation"``.
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


def task_for(dataset, *, label_smoothing: float = 0.0) -> Task:
    """The task a dataset asks for: one label per cloud -> classification."""
    sample = dataset[0]
    if sample.y.numel() == 1:
        return ClassificationTask(dataset.num_classes, label_smoothing=label_smoothing)
    raise ValueError("this dataset has a label per point (segmentation); part segmentation "
                     "is not in the training loop yet")
